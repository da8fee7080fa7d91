"""Edge-enhanced UNet: ResNet encoder, UNet decoder, edge branch and boundary head."""

from yoho.model.net import EdgeUNet, ModelConfig, ModelOutput, build_model

__all__ = ["EdgeUNet", "ModelConfig", "ModelOutput", "build_model"]
