"""Access: who may do what (API keys, and the permissions of each role) and, in time, what
they did (the audit log). Low in the layers: the collector and every face check keys."""
