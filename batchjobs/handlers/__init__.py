from .registry import HandlerContext, NonRetryableError, handler

__all__ = ["HandlerContext", "NonRetryableError", "handler"]
