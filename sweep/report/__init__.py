"""The comparison report: its numbers from MLflow alone, rendered as text, CSV and plots, with
Optuna's plots of each arm's study beside them, and as pandas DataFrames (frames.py).

Imports tracking/schema.py, spec/arm.py, mlflow, optuna (studies.py), scipy and matplotlib;
never ray, so `sweep report` works wherever the tracking store can be reached.

This package is also the API's `sweep.report(name, ...)` (sweep/api.py): `sweep.report` names the
package once any of its modules is imported, so the package itself is callable rather than a
function of that name that the first import would hide.
"""

import sys
import types


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from ..api import report

        return report(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
