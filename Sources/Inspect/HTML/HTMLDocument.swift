import Foundation
import Formats
import QPKCore

/// The self-contained HTML page every report is: one file, inline CSS and SVG, no script that
/// runs, no request for anything (a Content-Security-Policy of `default-src 'none'` makes the
/// browser refuse any fetch), light and dark colour schemes, and the report's data as one JSON
/// block (`<script type="application/json" id="qpk-report-data">`, spec/report.md §2).
struct HTMLDocument {
    var title: String
    /// The page's heading lines (already HTML).
    var header: String
    /// The sections, in order: `(id, heading, HTML body)`.
    var sections: [(id: String, heading: String, body: String)] = []

    init(title: String, header: String) {
        self.title = title
        self.header = header
    }

    mutating func section(_ id: String, _ heading: String, _ body: String) {
        sections.append((id, heading, body))
    }

    /// The whole page, with `data` (already JSON text) embedded.
    func render(data: String) -> String {
        var out = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="color-scheme" content="light dark">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
            <meta name="generator" content="qpk \(QPKProvenance.currentQPKVersion)">
            <link rel="icon" href="data:,">
            <title>\(HTML.text(title))</title>
            <style>\(ReportStyle.css)</style>
            </head>
            <body>
            <header>\(header)</header>

            """
        if sections.count > 1 {
            out += "<nav aria-label=\"Sections\"><ul>"
            for s in sections { out += "<li><a href=\"#\(s.id)\">\(HTML.text(s.heading))</a></li>" }
            out += "</ul></nav>\n"
        }
        out += "<main>\n"
        for s in sections {
            out += "<section id=\"\(s.id)\" aria-labelledby=\"\(s.id)-h\"><h2 id=\"\(s.id)-h\">\(HTML.text(s.heading))</h2>\n\(s.body)\n</section>\n"
        }
        out += """
            </main>
            <footer>Made by qpk \(QPKProvenance.currentQPKVersion). Every figure is drawn from the JSON \
            of <code>--json</code>, embedded below as <code>#qpk-report-data</code> (spec/report.md).</footer>
            <script type="application/json" id="qpk-report-data">\(data)</script>
            </body>
            </html>

            """
        return out
    }
}

/// Escaping and small HTML pieces.
enum HTML {
    /// `text` safe as element content or a double-quoted attribute value.
    static func text(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// A number as `data-*` attributes carry it: Swift's shortest round-trip spelling (`21.04`,
    /// `1e-05`, `inf`, `-inf`, `nan`), which Python's `float()` and JavaScript's `Number()` read
    /// back exactly; `null` for a missing value.
    static func exact(_ value: Double?) -> String {
        guard let value else { return "null" }
        return "\(value)"
    }

    /// A float32 value (a diff's worst element) as the JSON writes it: Float's shortest spelling.
    static func exact(_ value: Float) -> String { "\(value)" }

    /// ` data-key="value"` attributes.
    static func data(_ pairs: [(String, String)]) -> String {
        pairs.map { " data-\($0.0)=\"\(text($0.1))\"" }.joined()
    }

    /// JSON text safe inside a `<script>` element: `<` is written `\u003c` (valid JSON), so no
    /// `</script>` or `<!--` can appear.
    static func scriptSafe(_ json: Data) -> String {
        String(decoding: json, as: UTF8.self).replacingOccurrences(of: "<", with: "\\u003c")
    }

    /// A table: a caption, column headings (`numeric` columns right-aligned) and rows of HTML cells.
    static func table(caption: String, columns: [(String, numeric: Bool)], rows: [[String]], id: String? = nil) -> String {
        var out = "<div class=\"table-wrap\"><table\(id.map { " id=\"\($0)\"" } ?? "")><caption>\(text(caption))</caption><thead><tr>"
        for c in columns { out += "<th scope=\"col\"\(c.numeric ? " class=\"num\"" : "")>\(text(c.0))</th>" }
        out += "</tr></thead><tbody>"
        for row in rows {
            out += "<tr>"
            for (i, cell) in row.enumerated() {
                out += i < columns.count && columns[i].numeric ? "<td class=\"num\">\(cell)</td>" : "<td>\(cell)</td>"
            }
            out += "</tr>"
        }
        return out + "</tbody></table></div>"
    }

    /// A chart with its caption and, folded, the table of the numbers it draws.
    static func figure(_ svg: String, caption: String, table: String? = nil) -> String {
        var out = "<figure>\(svg)<figcaption>\(caption)</figcaption>"
        if let table { out += "<details><summary>Data table</summary>\(table)</details>" }
        return out + "</figure>"
    }

    /// Key figures in a row of cards: `(label, value, data key)`.
    static func cards(_ items: [(label: String, value: String)]) -> String {
        "<dl class=\"cards\">" + items.map { "<div><dt>\(text($0.label))</dt><dd>\(text($0.value))</dd></div>" }.joined() + "</dl>"
    }
}

/// Short axis labels of layer prefixes: the layer number with the component before it
/// (`encoder.layer.3.` → `layer.3`) when no other prefix has that label, else the whole prefix
/// without its trailing separator (`embeddings`, as for prefixes without a number).
func layerLabels(_ prefixes: [String]) -> [String: String] {
    let unique = Array(Set(prefixes))
    func candidates(_ prefix: String) -> [String] {
        let parts = prefix.split(whereSeparator: { $0 == "." || $0 == "/" }).map(String.init)
        let whole = parts.isEmpty ? prefix : parts.joined(separator: ".")
        guard let n = parts.lastIndex(where: { $0.allSatisfy(\.isASCIIDigit) }) else { return [whole, whole] }
        return [parts[max(0, n - 1)...n].joined(separator: "."), whole]
    }
    let options = Dictionary(uniqueKeysWithValues: unique.map { ($0, candidates($0)) })
    var level = Dictionary(uniqueKeysWithValues: unique.map { ($0, 0) })
    for _ in 0..<1 {
        let owners = Dictionary(grouping: unique, by: { options[$0]![level[$0]!] })
        for (_, group) in owners where group.count > 1 {
            for prefix in group { level[prefix] = 1 }
        }
    }
    return Dictionary(uniqueKeysWithValues: unique.map { ($0, options[$0]![level[$0]!]) })
}
