"""bayeslaw: Bayesian scaling laws. Every law is a PyMC model sampled with NUTS."""

__version__ = "0.1.0"

import warnings

# PyTensor warns at import when pip-installed without BLAS; no bayeslaw model uses BLAS ops.
warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")

from bayeslaw.data import Runs, load_runs
from bayeslaw.errors import BayeslawError, ConvergenceWarning, DataError, FitFileError, LawError, PriorError
from bayeslaw.fit import Fit, fit, load
from bayeslaw.laws import LAWS, Law, get_law
from bayeslaw.priors import Prior

__all__ = ["LAWS", "BayeslawError", "ConvergenceWarning", "DataError", "Fit", "FitFileError", "Law",
           "LawError", "Prior", "PriorError", "Runs", "__version__", "fit", "get_law", "load", "load_runs"]
