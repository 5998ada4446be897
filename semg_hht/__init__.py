"""semg-hht: classify surface-EMG recordings from their Hilbert-Huang spectra.

The package is importable without torch; the modules that need it
(``encoder``, ``classifier``, ``checkpoint``, ``training``, ``prediction``)
import it themselves.
"""

__version__ = "0.3.0"
