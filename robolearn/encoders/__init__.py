from robolearn.encoders.base import ObsEncoder
from robolearn.encoders.multi import build_encoder

__all__ = ["ObsEncoder", "build_encoder"]
