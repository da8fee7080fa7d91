"""TATAR: one multimodal LLM that scores image quality (IQA) and image aesthetics (IAA).

Post-training is task-aware: short rationales for IQA and deliberative ones for IAA, SFT with
asymmetric thought dropout, then GRPO with asymmetric rewards (Gaussian score shaping for IQA,
Thurstone completion ranking for IAA).
"""

__version__ = "0.1.0"
