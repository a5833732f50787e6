"""What a scenario declares, without I/O: the fault and expectation specs (the workload's is
`harness.workload.spec`). No module here imports a network client; fault drivers and checks
import these specs, never the reverse, so loading and validating a scenario touches nothing."""
