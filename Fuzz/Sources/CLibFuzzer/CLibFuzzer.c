// Declarations only: LLVMFuzzerRunDriver comes from libFuzzer at link time.
