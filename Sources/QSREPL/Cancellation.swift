import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The process-wide request to stop the running command. Ctrl-C (SIGINT) sets it; long engine
/// work polls `isRequested` between layers and stops cleanly; the REPL clears it at each prompt.
/// The flag is a lock-free atomic and the handler only stores to it and writes one byte to a
/// pipe, so both are safe inside a signal handler.
package enum Cancellation {
    private static let flag = Atomic<Bool>(false)
    private static let wakeWriter = Atomic<Int32>(-1)
    private static let wakeReader = Atomic<Int32>(-1)

    /// Whether Ctrl-C was pressed since the last `reset()`.
    package static var isRequested: Bool { flag.load(ordering: .relaxed) }

    /// Forgets an earlier request.
    package static func reset() {
        flag.store(false, ordering: .relaxed)
        drainWakeDescriptor()
    }

    /// Asks the running command to stop, as Ctrl-C does.
    package static func request() {
        flag.store(true, ordering: .relaxed)
        var byte: UInt8 = 1
        let writer = wakeWriter.load(ordering: .relaxed)
        if writer >= 0 { _ = write(writer, &byte, 1) }
    }

    /// A descriptor that becomes readable when a request arrives, so a blocking wait for input
    /// (the line editor's) can wait on it too and never miss a Ctrl-C; -1 before `install()`.
    package static var wakeDescriptor: Int32 { wakeReader.load(ordering: .relaxed) }

    /// Makes SIGINT set the flag instead of ending the process. The handler is installed
    /// without SA_RESTART, so blocking calls return with EINTR.
    package static func install() {
        if wakeReader.load(ordering: .relaxed) < 0 {
            var ends: [Int32] = [-1, -1]
            if pipe(&ends) == 0 {
                for end in ends {
                    _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
                    _ = fcntl(end, F_SETFD, FD_CLOEXEC)
                }
                wakeReader.store(ends[0], ordering: .relaxed)
                wakeWriter.store(ends[1], ordering: .relaxed)
            }
        }
        reset()
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in Cancellation.request() }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
    }

    private static func drainWakeDescriptor() {
        let reader = wakeReader.load(ordering: .relaxed)
        guard reader >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 64)
        while buffer.withUnsafeMutableBytes({ read(reader, $0.baseAddress, $0.count) }) > 0 {}
    }
}
