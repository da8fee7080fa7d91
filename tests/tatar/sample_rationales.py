"""Two teacher rationales that pass the rule checks: a short IQA one (36 words) and a
deliberative IAA one (126 words, 7 aspects). Shared by the rationale and recipe tests."""

IQA_THINK = (
    "The photo is sharply focused with crisp edges and fine texture on the main subject. "
    "Mild sensor noise creeps into the darker shadow regions, yet exposure stays balanced and "
    "colours look natural without visible compression artifacts."
)
IAA_THINK = (
    "Warm evening light washes over the harbour and gives the scene a soft golden palette, "
    "because the low sun rakes across the water and picks out gentle texture in the waves. The "
    "composition places the moored boats along a clear diagonal, so the eye travels from the "
    "foreground ropes toward the distant lighthouse, although the horizon sits slightly off "
    "balance. Technically the exposure is well controlled and the focus stays sharp across the "
    "frame, which makes the fine rigging legible. The theme of a quiet return after a working "
    "day comes through clearly, and the calm mood invites the viewer to linger. The approach is "
    "conventional rather than original, leaning on a familiar postcard style, so the overall "
    "impression is pleasant and competent but not striking."
)
