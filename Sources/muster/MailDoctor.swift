import ArgumentParser
import Foundation
import MusterKit

extension Muster.Mail {
    struct Doctor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the sender domain's SPF, DKIM key, DMARC and MX in DNS.",
            discussion: """
                Looks up the domain of muster.yaml's sender (or --domain): its SPF record,
                the DKIM key at dkim.selector (compared with muster's own key), the DMARC
                policy and its alignment with the From domain, and the MX records. Each
                check is ok, warning or problem, with what a receiver will think and what
                to change (the exact record to publish when muster knows it).

                DNS: the servers of /etc/resolv.conf, or --dns (or MUSTER_DNS_SERVER), an
                IPv4 address with an optional port, to check a zone before publishing it.

                Exit codes: 0 no problem (warnings allowed); 1 a problem found; 69 DNS
                gave no answer (nothing was judged); 64 a bad option or no sender; 65
                muster.yaml has errors.
                """)

        @Option(help: ArgumentHelp("Ask this DNS server (IPv4[:PORT]) instead of /etc/resolv.conf's.", valueName: "ADDRESS"))
        var dns: String?

        @Option(help: ArgumentHelp("Seconds to wait for each DNS answer (tried twice).", valueName: "SECONDS"))
        var timeout: Int = 5

        @Option(help: ArgumentHelp("Check this domain instead of the sender's.", valueName: "DOMAIN"))
        var domain: String?

        @Option(help: ArgumentHelp("When muster does not sign: the relay's DKIM selector to look up.", valueName: "NAME"))
        var selector: String?

        @OptionGroup var workspaceOptions: WorkspaceOptions
        @OptionGroup var output: OutputOptions

        struct Result: Encodable {
            let domain: String
            let dns: String
            let checks: [MailDoctor.Finding]
            let problems: Int
            let warnings: Int
        }

        /// Text from DNS as the terminal may show it: control characters (an escape
        /// sequence hidden in someone's TXT record) are written as \u{…}.
        static func printable(_ text: String) -> String {
            String(text.unicodeScalars.map { scalar -> String in
                scalar.properties.generalCategory == .control ? "\\u{\(String(scalar.value, radix: 16))}" : String(scalar)
            }.joined())
        }

        func run() throws {
            try reportingErrors {
                let environment = ProcessInfo.processInfo.environment
                guard (1...60).contains(timeout) else { throw MusterError.usage("--timeout must be from 1 to 60 seconds, not \(timeout)") }
                var server: DNSServer? = nil
                if let text = dns ?? environment["MUSTER_DNS_SERVER"].flatMap({ $0.isEmpty ? nil : $0 }) {
                    do throws(DNSFailure) {
                        server = try DNSServer(parsing: text)
                    } catch {
                        throw MusterError.usage("\(dns == nil ? "MUSTER_DNS_SERVER: " : "--dns: ")\(error.message)")
                    }
                }
                let context = try RunContext.make(workspaceOptions)
                let settings = try WorkspaceSettings.loadOrThrow(context.workspace)
                let sender: MailAddress?
                if let text = settings.sender {
                    do { sender = try MailAddress(parsing: text, header: "From") } catch {
                        throw MusterError.badInput("sender '\(text)' in muster.yaml: \(error.localizedDescription)")
                    }
                } else {
                    sender = nil
                }
                guard let given = domain ?? sender?.domain else {
                    throw MusterError.usage("no sender: set 'sender' in muster.yaml, or give the domain to check with --domain")
                }
                // DNS holds an internationalised domain in its ASCII form (bücher.example → xn--bcher-kva.example).
                let fromDomain: String
                do throws(IDNA.Failure) {
                    fromDomain = try IDNA.toASCII(given)
                } catch {
                    throw MusterError.usage("'\(given)' is not a domain name muster can look up: \(error.description)")
                }
                guard fromDomain.contains(".") else {
                    throw MusterError.usage("'\(given)' is not a domain name muster can look up: a domain has at least two labels, as in example.org")
                }
                if let selector, settings.dkimSelector != nil {
                    throw MusterError.usage("--selector \(selector): muster signs with dkim.selector from muster.yaml; --selector is for a relay that signs instead")
                }
                var ownKey: MailDoctor.OwnKey? = nil
                if let keySelector = settings.dkimSelector {
                    do {
                        if let signer = try settings.dkimSigner(workspace: context.workspace, senderDomain: fromDomain) {
                            ownKey = MailDoctor.OwnKey(signer: signer)
                        }
                    } catch let error as MusterError {
                        ownKey = MailDoctor.OwnKey(domain: settings.dkimDomain ?? fromDomain, selector: keySelector, publicKey: nil, keyType: nil,
                                                   record: nil, problem: error.message)
                    }
                }
                let relayURL = environment["MUSTER_SMTP_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? settings.smtpURL
                let relayHost = relayURL.flatMap { URLComponents(string: $0)?.host }.map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "[]")) }
                let doctor = MailDoctor(domain: fromDomain, senderAddress: domain == nil ? sender?.address : nil, ownKey: ownKey,
                                        relaySelector: selector, relayHost: relayHost)
                let resolver = SystemResolver(server: server, timeout: timeout, attempts: 2)
                let findings: [MailDoctor.Finding]
                do throws(DNSFailure) {
                    findings = try doctor.run(resolver)
                } catch {
                    throw MusterError(.relayUnreachable, "\(error.message); nothing was judged. Check the network, or the server given with --dns or MUSTER_DNS_SERVER")
                }
                let problems = findings.filter { $0.status == .problem }.count
                let warnings = findings.filter { $0.status == .warning }.count
                if output.json {
                    Console.json(Result(domain: fromDomain, dns: server?.description ?? "/etc/resolv.conf", checks: findings, problems: problems, warnings: warnings))
                } else {
                    Console.line("mail doctor: \(fromDomain), asking \(resolver.serverDescription)")
                    for finding in findings {
                        Console.line("")
                        Console.line("\(finding.status.rawValue): \(finding.check): \(Self.printable(finding.message))")
                        for record in finding.records ?? [] { Console.line("    found: \(Self.printable(record))") }
                        if let publish = finding.publish { Console.line("    publish: \(publish)") }
                    }
                    Console.line("")
                    Console.line(problems == 0 && warnings == 0 ? "all checks ok"
                                 : "\(problems) problem\(problems == 1 ? "" : "s"), \(warnings) warning\(warnings == 1 ? "" : "s")")
                }
                if problems > 0 { throw ExitCode(ExitStatus.failure.rawValue) }
            }
        }
    }
}
