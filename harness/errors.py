"""One error hierarchy: everything the harness raises on purpose is a `HarnessError`.

Catch `HarnessError` to turn any deliberate failure into a clear message (the CLI's exit, a
scenario's `error` verdict, a refused service request); anything else is a bug and keeps its
traceback. Adapters (Prometheus, Alertmanager, the notification receiver, Toxiproxy, NATS admin)
wrap their library's errors in their own subclass carrying the URL and what was tried, so a
check never sees an httpx, requests or nats exception and can turn any adapter failure into
an `error` verdict. The tree, with where each class lives:

    HarnessError
    ├── AdapterError                  a component of the target could not be consulted
    │   ├── PrometheusError, AlertmanagerError, ReceiverError, ToxiproxyError, NatsAdminError
    ├── FileProblems                  harness.yamlfile: a YAML file (scenario, target, contract,
    │                                 settings) is unreadable or invalid, with file and line
    ├── UnknownScenarios              harness.scenario: ids that name no scenario
    ├── UnknownTarget                 harness.service.targets: no such target or slot
    ├── PlanProblem                   harness.service.service: a run request that cannot run
    ├── TargetLocked                  harness.faults.lock: another run holds the target
    ├── TargetBusy                    harness.service.manager: the service is running there
    ├── Refused                       harness.service.manager: the safety lever is engaged
    ├── Denied                        harness.service.policy: a role or policy refuses the call
    ├── DataDirInUse                  harness.service.datalock: another service holds the dir
    ├── BodyTooLarge                  harness.service.gate: a request body over the cap (a 413)
    ├── NoTokensFile                  harness.service.service: a tokens reload without a file
    ├── StackError                    harness.stack.stack: the local stack cannot start or stop
    │   └── ComponentFailed           a component of the local stack exited or did not come up
    ├── MissingBinary                 harness.stack.binaries: nats-server, prometheus, ... absent
    ├── ProbeFailed                   harness.probes: a component did not answer its probe
    ├── FaultNotInEffect, FaultStillPresent   harness.faults.base: read-back disproves a fault
    │   ├── NodeNotResolved           harness.faults.cluster: no node plays the role asked for
    │   └── StepdownRefused           harness.faults.stepdown: the JetStream API refused it
    ├── FaultApplyError               harness.faults.lifecycle: a fault could not be injected
    ├── PreflightFailed               harness.preflight: the target is not fit to run on
    ├── TopologyMismatch              harness.plan: a scenario's topology is on no slot of the run
    ├── PhaseFailed                   harness.orchestrator: a phase could not complete
    ├── EvidenceSchemaError           harness.evidence.bundle: evidence of a schema not read
    ├── RejudgeError                  harness.rejudge: a run that cannot be judged again
    ├── RunDirProblem                 harness.report.runs: a run directory without evidence
    ├── ClaimedMatrixError            harness.report.claimed: the claimed coverage is invalid
    └── PdfError                      harness.report.pdf: Chromium could not print the report

A new error derives from the closest class here and is added to this tree.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Base of every error the harness raises deliberately."""


class AdapterError(HarnessError):
    """A component of the target could not be consulted; the message names URL and action."""


class PrometheusError(AdapterError):
    """Prometheus could not answer; the message names the URL, the query and the cause."""


class AlertmanagerError(AdapterError):
    """Alertmanager could not answer."""


class ReceiverError(AdapterError):
    """The notification receiver (webhook) could not answer."""


class ToxiproxyError(AdapterError):
    """The Toxiproxy server refused or failed a call."""


class NatsAdminError(AdapterError):
    """A JetStream admin request (consumer info, advisories) failed."""


def describe(exc: BaseException) -> str:
    """`Type: message`, or just the type when the message is empty."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
