import CLibFuzzer
import Foundation

/// Stops the fuzzer with a message when an invariant fails, so libFuzzer records the
/// input as a crash (`crash-<sha1>`).
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        FileHandle.standardError.write(Data("invariant failed at \(file):\(line): \(message())\n".utf8))
        abort()
    }
}

/// Runs libFuzzer's driver with this process's arguments, calling `test` once per input.
///
/// SwiftPM links each executable with its own `main`, so the targets call the driver
/// from `main.swift` instead of relying on libFuzzer's `main`.
public func runFuzzer(_ test: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, test))
}

/// The input as bytes (an empty buffer for a null pointer).
public func bytes(_ data: UnsafePointer<UInt8>?, _ count: Int) -> UnsafeBufferPointer<UInt8> {
    UnsafeBufferPointer(start: count > 0 ? data : nil, count: count)
}
