import Foundation

/// What the kiosk reads from its console: a line, or a key that asks for something.
public enum KioskInput: Equatable, Sendable {
    /// Enter: the line as typed and edited.
    case line(String)
    /// Enter on a line with bytes that are not UTF-8 (dropped at this byte offset).
    case invalidUTF8(byteOffset: Int)
    /// Ctrl-C: abandon what is being typed.
    case interrupted(hadText: Bool)
    /// Ctrl-D on an empty line.
    case endRequested
    /// The session must end now: SIGTERM or SIGHUP arrived, or the terminal went away.
    case terminated(signal: Int32)
}

/// Where a kiosk session reads answers and writes its screens.
public protocol KioskConsole {
    /// Shows `prompt` and reads one line; `secret` lines are not echoed.
    mutating func read(prompt: String, secret: Bool) -> KioskInput
    /// Writes text to the screen.
    mutating func write(_ text: String)
}

// The signal handlers can only reach globals. They are set while a kiosk runs, from
// the one thread that runs it, before the handlers are installed.
nonisolated(unsafe) private var signalPipeWrite: Int32 = -1
nonisolated(unsafe) private var savedTerminal = termios()
nonisolated(unsafe) private var savedTerminalDescriptor: Int32 = -1

/// The kiosk's terminal, locked: raw mode (Ctrl-C, Ctrl-\, Ctrl-Z and Ctrl-D arrive
/// as keys, not as signals or end of input; no flow control), keyboard signals sent
/// from outside ignored too, SIGTERM and SIGHUP turned into `.terminated`, and the
/// terminal's own settings restored by `restore()` — which `close()`, a crash
/// handler and the end of a terminating signal all call.
public final class KioskTerminal: KioskConsole {
    private let input: Int32
    private let output: Int32
    private var editor = LineEditor()
    private var pending: [UInt8] = []
    private var pipe: (read: Int32, write: Int32) = (-1, -1)
    private var original = termios()
    private var previousHandlers: [Int32: sigaction] = [:]
    private var active = false

    /// The signals a member of the public could send from the keyboard, ignored while locked.
    static let ignoredSignals: [Int32] = [SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU]
    /// The signals that end the session (tidily): the machine shutting down, the terminal closed.
    public static let endingSignals: [Int32] = [SIGTERM, SIGHUP]
    /// Crashes: restore the terminal, then die as before.
    static let crashSignals: [Int32] = [SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGABRT, SIGFPE]

    /// Locks the terminal on `input` (which must be a terminal), writing to `output`.
    public init(input: Int32 = STDIN_FILENO, output: Int32) throws {
        self.input = input
        self.output = output
        guard isatty(input) == 1 else { throw MusterError.usage("the kiosk needs a terminal") }
        guard tcgetattr(input, &original) == 0 else {
            throw MusterError.failure("cannot read the terminal's settings: \(String(cString: strerror(errno)))")
        }
        var fds: [Int32] = [-1, -1]
        guard Glibc.pipe(&fds) == 0 else { throw MusterError.failure("cannot create a pipe: \(String(cString: strerror(errno)))") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC); _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        pipe = (fds[0], fds[1])

        savedTerminal = original
        savedTerminalDescriptor = input
        signalPipeWrite = pipe.write
        for signal in Self.ignoredSignals { install(signal, handler: SIG_IGN) }
        for signal in Self.endingSignals {
            install(signal) { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = Glibc.write(signalPipeWrite, &byte, 1)
            }
        }
        for signal in Self.crashSignals {
            install(signal, flags: Int32(bitPattern: UInt32(SA_RESETHAND))) { number in
                if savedTerminalDescriptor >= 0 { _ = tcsetattr(savedTerminalDescriptor, TCSANOW, &savedTerminal) }
                _ = raise(number)
            }
        }

        var raw = original
        raw.c_lflag &= ~tcflag_t(ICANON | ECHO | ECHONL | ISIG | IEXTEN)
        raw.c_iflag &= ~tcflag_t(IXON | IXOFF | ICRNL | INLCR | IGNCR | ISTRIP | BRKINT)
        raw.c_iflag |= tcflag_t(IGNBRK)
        raw.c_cflag |= tcflag_t(CS8)
        withUnsafeMutableBytes(of: &raw.c_cc) { cc in
            cc[Int(VMIN)] = 1
            cc[Int(VTIME)] = 0
        }
        active = true
        guard tcsetattr(input, TCSAFLUSH, &raw) == 0 else {
            let reason = String(cString: strerror(errno))
            restore()
            throw MusterError.failure("cannot put the terminal in raw mode: \(reason)")
        }
    }

    deinit { restore() }

    private func install(_ signal: Int32, flags: Int32 = 0, handler: (@convention(c) (Int32) -> Void)?) {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = handler
        action.sa_flags = flags
        sigemptyset(&action.sa_mask)
        var previous = sigaction()
        sigaction(signal, &action, &previous)
        if previousHandlers[signal] == nil { previousHandlers[signal] = previous }
    }

    /// Gives the terminal back as it was (cooked mode, echo, signals), throwing away
    /// anything typed but not read, so none of it reaches the shell; puts the signal
    /// handlers back. Safe to call more than once.
    public func restore() {
        guard active else { return }
        active = false
        _ = tcsetattr(input, TCSAFLUSH, &original)
        savedTerminalDescriptor = -1
        for (signal, var previous) in previousHandlers { sigaction(signal, &previous, nil) }
        previousHandlers.removeAll()
        signalPipeWrite = -1
        Glibc.close(pipe.read)
        Glibc.close(pipe.write)
        pipe = (-1, -1)
    }

    public func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.write(output, $0.baseAddress! + offset, $0.count - offset) }
            if count > 0 { offset += count } else if count < 0 && errno == EINTR { continue } else { return }
        }
    }

    private var columns: Int {
        var size = winsize()
        if ioctl(output, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return 80
    }

    public func read(prompt: String, secret: Bool) -> KioskInput {
        var prompt = prompt
        let width = columns
        if LineEditor.width(prompt) > width - 16 {
            // A long question gets its own lines; the answer goes after a short prompt.
            write("\r" + prompt.trimmingCharacters(in: .whitespaces) + "\n")
            prompt = "> "
        }
        write(editor.render(prompt: prompt, columns: width, secret: secret))
        var byte: UInt8 = 0
        if Glibc.read(pipe.read, &byte, 1) == 1 { return .terminated(signal: Int32(byte)) }
        while true {
            if pending.isEmpty {
                if let signal = waitForInput() { return .terminated(signal: signal) }
            }
            var event: LineEditor.Event?
            while !pending.isEmpty, event == nil {
                let byte = pending.removeFirst()
                // Show the line as it is sent, even when Enter came in the same read (a paste).
                if byte == 0x0D || byte == 0x0A { write(editor.render(prompt: prompt, columns: width, secret: secret)) }
                event = editor.feed(byte)
            }
            guard let event else {
                write(editor.render(prompt: prompt, columns: width, secret: secret))
                continue
            }
            switch event {
            case .submitted(let line):
                write("\n")
                return .line(line)
            case .invalidUTF8(let offset):
                write("\n")
                return .invalidUTF8(byteOffset: offset)
            case .interrupted(let hadText):
                write("^C\n")
                return .interrupted(hadText: hadText)
            case .endRequested:
                return .endRequested
            }
        }
    }

    /// Blocks until the terminal has bytes (into `pending`) or an ending signal arrives (returned).
    private func waitForInput() -> Int32? {
        while true {
            var fds = [pollfd(fd: input, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: pipe.read, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, -1)
            if ready < 0 {
                if errno == EINTR { continue }
                return SIGHUP
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                var byte: UInt8 = 0
                if Glibc.read(pipe.read, &byte, 1) == 1 { return Int32(byte) }
            }
            if fds[0].revents != 0 {
                var chunk = [UInt8](repeating: 0, count: 512)
                let count = chunk.withUnsafeMutableBytes { Glibc.read(input, $0.baseAddress, $0.count) }
                if count > 0 {
                    pending.append(contentsOf: chunk[..<count])
                    return nil
                }
                if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
                // End of input on a raw terminal, or an error: the terminal is gone (hung up).
                return SIGHUP
            }
        }
    }
}
