"""The project's error types: one base class the CLI turns into a one-line message."""


class CifarHelpersError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(CifarHelpersError):
    """A profile, environment variable or command-line value is invalid."""


class DataError(CifarHelpersError):
    """A CIFAR-10 file or directory is missing, unreadable, malformed or unsafe."""


class DownloadUnavailableError(DataError):
    """A download could not be reached (offline, blocked or timed out)."""


class CertificateError(CifarHelpersError):
    """HTTPS certificates cannot be verified: not "offline", so nothing falls back in silence."""


class WeightsError(CifarHelpersError):
    """Requested model weights cannot be obtained or loaded."""


class OutputError(CifarHelpersError):
    """The output folder cannot be created or written."""


class FallbackRefusedError(OutputError):
    """A run folder holds phases made with real data or weights, which 'auto' fell back from
    here: training would replace them, so the folder is refused."""


class RunFolderBusyError(OutputError):
    """Another run is training in the run folder (its lock is alive)."""


class TrainingError(CifarHelpersError):
    """Training diverged (NaN or infinite loss) or cannot continue."""


class LossNotFiniteError(TrainingError):
    """The loss became NaN or infinite: the weights saved since are not worth resuming from."""
