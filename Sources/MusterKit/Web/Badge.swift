import Foundation

/// The progress badge of `/c/<slug>/badge.svg`: a static SVG (no script, no link, no
/// font or image from elsewhere), 200 × 28, "1,234 signed" on the left and a bar filled
/// to count / goal on the right. Only numbers go into it, so nothing a signer or an
/// organizer typed can reach the markup.
enum Badge {
    static func svg(count: Int64, goal: Int64) -> String {
        let label = "\(Number.grouped(count)) signed"
        let fraction = goal > 0 ? min(1, Double(count) / Double(goal)) : 0
        let width = Int((fraction * 86).rounded())
        let percent = goal > 0 ? count * 100 / goal : 0
        let title = "\(label) of \(Number.grouped(goal)) (\(percent)%)"
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="200" height="28" viewBox="0 0 200 28" role="img" aria-label="\(title)">
            <title>\(title)</title>
            <rect width="200" height="28" rx="4" fill="#1f2328"/>
            <text x="8" y="18" fill="#ffffff" font-family="sans-serif" font-size="12">\(label)</text>
            <rect x="106" y="9" width="86" height="10" rx="3" fill="#57606a"/>
            <rect x="106" y="9" width="\(width)" height="10" rx="3" fill="#2da44e"/>
            </svg>

            """
    }
}
