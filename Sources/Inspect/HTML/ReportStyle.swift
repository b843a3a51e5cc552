/// The reports' style sheet: system fonts, a light scheme and a dark one
/// (`prefers-color-scheme`), and the colours of the charts as CSS variables, so SVG marks follow
/// the scheme. The kind colours are Okabe and Ito's colour-blind-safe palette (2008).
enum ReportStyle {
    static let css = """
        :root{--bg:#fff;--fg:#1d1f23;--muted:#5c6370;--line:#d5d9e0;--grid:#e9ecf1;--panel:#f6f7f9;\
        --band:#f1f3f6;--accent:#0b62c4;--bar1:#3b78c2;--bar2:#d0812b;--good:#1a7f37;--bad:#c0362c;--warn:#9a6700;\
        --heat:#c0362c;--mark3:#9a6700;--mark6:#c0362c;\
        --k-embedding:#7f7f7f;--k-query:#0072B2;--k-key:#56B4E9;--k-value:#009E73;--k-qkv:#332288;\
        --k-attention_output:#CC79A7;--k-ffn_gate:#999933;--k-ffn_up:#E69F00;--k-ffn_down:#D55E00;--k-norm:#aaaaaa;--k-other:#444444}
        @media (prefers-color-scheme: dark){:root{--bg:#15171b;--fg:#e4e6ea;--muted:#9aa3b0;--line:#3a3f48;--grid:#2a2e35;\
        --panel:#1e2126;--band:#1c1f24;--accent:#6cb2ff;--bar1:#6aa0e0;--bar2:#e8a35a;--good:#57c26f;--bad:#ff7b72;--warn:#e3b341;\
        --heat:#ff7b72;--mark3:#e3b341;--mark6:#ff7b72;--k-embedding:#a0a0a0;--k-qkv:#8877dd;--k-other:#c8c8c8;--k-norm:#777777}}
        *{box-sizing:border-box}
        html{background:var(--bg);color:var(--fg)}
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;max-width:1180px;padding:20px 24px 40px}
        header h1{font-size:22px;margin:0 0 4px;word-break:break-all}
        header p{margin:2px 0;color:var(--muted)}
        h2{font-size:18px;margin:28px 0 8px;padding-bottom:4px;border-bottom:1px solid var(--line)}
        h3{font-size:14px;margin:16px 0 6px}
        a{color:var(--accent)}
        code{font:12.5px ui-monospace,"DejaVu Sans Mono",monospace}
        nav ul{list-style:none;padding:0;margin:10px 0 0;display:flex;flex-wrap:wrap;gap:4px 16px}
        .cards{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0 0;padding:0}
        .cards div{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:6px 12px;min-width:110px}
        .cards dt{font-size:12px;color:var(--muted)}
        .cards dd{margin:0;font-size:17px;font-weight:600;font-variant-numeric:tabular-nums}
        .verdict-equal{color:var(--good)} .verdict-different{color:var(--bad)}
        figure{margin:12px 0 18px}
        figcaption{color:var(--muted);font-size:12.5px;margin-top:2px;max-width:880px}
        figcaption code,dd code{overflow-wrap:anywhere}
        details{margin-top:4px} summary{cursor:pointer;color:var(--accent);font-size:12.5px}
        .table-wrap{overflow-x:auto}
        table{border-collapse:collapse;font-size:12.5px;font-variant-numeric:tabular-nums;margin:6px 0}
        caption{text-align:left;color:var(--muted);padding-bottom:4px}
        th,td{padding:3px 8px;border-bottom:1px solid var(--grid);text-align:left;white-space:nowrap}
        th{font-weight:600;border-bottom:1px solid var(--line)}
        .num{text-align:right}
        dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:3px 14px;margin:8px 0}
        dl.facts dt{color:var(--muted)} dl.facts dd{margin:0;word-break:break-word}
        .grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:6px 22px}
        .grid figure{margin:4px 0}
        .note{color:var(--muted);font-size:12.5px}
        .legend{display:flex;flex-wrap:wrap;gap:2px 14px;font-size:12.5px;margin:2px 0 0;padding:0;list-style:none}
        .legend li::before{content:"";display:inline-block;width:10px;height:10px;border-radius:50%;margin-right:5px;background:var(--c)}
        svg{max-width:100%;height:auto;display:block;overflow:visible}
        svg text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;fill:var(--fg)}
        svg .axis-title{fill:var(--muted);font-size:11.5px}
        svg .chart-title{font-size:12px;font-weight:600}
        svg .tick{fill:var(--muted)}
        svg .gridline{stroke:var(--grid);stroke-width:1}
        svg .axis{stroke:var(--line);stroke-width:1}
        svg .band{fill:var(--band)}
        svg .bar1{fill:var(--bar1)} svg .bar2{fill:var(--bar2)}
        svg .hist{fill:var(--bar1)}
        svg .mean{stroke:var(--fg);stroke-width:1;stroke-dasharray:2 2}
        svg .mark3{stroke:var(--mark3);stroke-width:1.3;stroke-dasharray:4 3} svg .mark3-label{fill:var(--mark3)}
        svg .mark6{stroke:var(--mark6);stroke-width:1.3;stroke-dasharray:6 2} svg .mark6-label{fill:var(--mark6)}
        svg .heat{fill:var(--heat)} svg .frame{fill:none;stroke:var(--line)}
        svg .line{fill:none;stroke-width:1.6}
        svg .status-different{fill:var(--bad)} svg .status-close{fill:var(--warn)} svg .status-equal{fill:var(--good)}
        """ + kindRules

    /// `.k-query{fill:var(--k-query);stroke:var(--k-query)}` and the legend colour, per kind.
    private static let kindRules = LayerKind.allCases.map { kind in
        "svg .k-\(kind.rawValue){fill:var(--k-\(kind.rawValue));stroke:var(--k-\(kind.rawValue))}"
            + " svg .line.k-\(kind.rawValue){fill:none}"
            + " .legend .k-\(kind.rawValue){--c:var(--k-\(kind.rawValue))}"
    }.joined(separator: "\n")
}
