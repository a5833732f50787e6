"""What a scenario declares, without I/O: the fault specs (the workload's is
`harness.workload.spec`; each check kind's expectation is in its own module of `harness.checks`,
which imports no network client either). No module here imports a network client; fault drivers
import these specs, never the reverse, so loading and validating a scenario touches nothing."""
