// Users of Hypervisor get the KVM C structs (kvm_regs, kvm_sregs, kvm_run, ...) and KVM_* constants
// without importing the shim themselves.
@_exported import CKVM
