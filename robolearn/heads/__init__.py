from robolearn.heads.base import ActionHead, ConfigError, build_head, head_class, head_names, register_head

__all__ = ["ActionHead", "ConfigError", "build_head", "head_class", "head_names", "register_head"]
