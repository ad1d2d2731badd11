"""The one exception type for input a user can get wrong."""


class UserInputError(ValueError):
    """Bad user input; the message names the parameter, the rule and the value.

    Pages show it with ``st.error`` and stop; anything else escaping the engine is a bug.
    """
