"""The one exception type for bad user input (config, data file, sample, checkpoint).

The command line prints its message as a single line and exits non-zero, so every message names the
culprit: the file, the sample or the config key.
"""


class InputError(Exception):
    """Bad input from the user: the message is one line naming the file, sample or key at fault."""
