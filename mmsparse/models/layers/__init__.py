"""Building blocks shared by mmsparse backbones."""
