"""Errors a user can act on, each tied to the CLI exit code in the contract."""


class CpoError(Exception):
    exit_code = 1


class InputError(CpoError):
    """Invalid input or configuration: names the file, the column and example rows (exit 2)."""

    exit_code = 2


class SafetyGateError(CpoError):
    """The safety gate stopped the run: too few passing variants, or the screener is unavailable (exit 3)."""

    exit_code = 3


class ScreenerUnavailable(SafetyGateError):
    """The screening backend could not give a verdict; we fail closed."""


def public_message(error: BaseException) -> str:
    """What a person, `run_status.json` and Prefect's log may see of an error: personal data masked."""
    from tasks.privacy import mask_text

    return mask_text(str(error) if isinstance(error, CpoError) else f"{type(error).__name__}: {error}")
