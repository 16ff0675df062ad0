"""The batch_run hook (handler.py). Lambda imports this package first: the collector pauses
while the handler's modules load (shared/coldstart.py)."""

from shared.coldstart import pause

pause()
