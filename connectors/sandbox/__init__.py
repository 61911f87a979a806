"""The sandbox CRM: Salesforce and HubSpot emulated on loopback (see DESIGN.md).

`Sandbox` is the entry point; `Faults` the fault-injection spec; `Rep` a user/owner to create.
This package imports nothing from sync or audit.
"""

from .faults import Faults
from .process import SandboxProcess
from .reps import Rep
from .sandbox import Sandbox

__all__ = ["Faults", "Rep", "Sandbox", "SandboxProcess"]
