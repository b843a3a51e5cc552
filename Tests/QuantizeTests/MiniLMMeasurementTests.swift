import Foundation
import Testing

@testable import Quantize
import QPKCore

/// Reads the f32 tensors of a safetensors file (test helper: trusts the reference file).
enum SafetensorsF32 {
    static func load(_ path: String) throws -> [(TensorInfo, [Float])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        let headerLength = data.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as! [String: Any]
        var tensors: [(TensorInfo, [Float])] = []
        for (name, entry) in header where name != "__metadata__" {
            let e = entry as! [String: Any]
            guard e["dtype"] as? String == "F32" else { continue }
            let shape = e["shape"] as! [Int]
            let offsets = e["data_offsets"] as! [Int]
            let bytes = data.subdata(in: (8 + headerLength + offsets[0])..<(8 + headerLength + offsets[1]))
            let floats = bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            tensors.append((TensorInfo(name: name, dtype: .f32, shape: shape), floats))
        }
        return tensors.sorted { $0.0.name < $1.0.name }
    }
}

/// Measurements on the real MiniLM-L6 checkpoint, run only when `QPK_MINILM` names it (the
/// interop tests of `make test` check the same bars through the release binary). Run in release
/// mode: `QPK_MINILM=…/model.safetensors swift test -c release --filter MiniLM`.
/// `QPK_MEASURE_TABLE=1` prints the full method table of spec/quantization.md §7; quantization
/// speed is measured by `bench/quality`, never here.
@Suite(.serialized) struct MiniLMMeasurementTests {
    static let path = ProcessInfo.processInfo.environment["QPK_MINILM"] ?? ""
    static var available: Bool { !path.isEmpty && FileManager.default.fileExists(atPath: path) }
    /// The heavier measurements (MSE and HQQ over 10–22 M parameters) need an optimized build.
    static var optimized: Bool {
        #if DEBUG
        false
        #else
        true
        #endif
    }

    static func encoderWeights() throws -> [(TensorInfo, [Float])] {
        try SafetensorsF32.load(path).filter { $0.0.name.hasPrefix("encoder.") && $0.0.shape.count == 2 }
    }

    /// Aggregate SQNR and bpw over tensors, quantized in parallel.
    static func measure(_ tensors: [(TensorInfo, [Float])], recipe: QuantizationRecipe) -> (sqnr: Double, bpw: Double, seconds: Double) {
        let results = Results(count: tensors.count)
        let start = Date()
        DispatchQueue.concurrentPerform(iterations: tensors.count) { i in
            let (info, values) = tensors[i]
            let q = TensorQuantizer.quantize(values, info: info, recipe: recipe)
            let signal = values.reduce(0.0) { $0 + Double($1) * Double($1) }
            let noise = signal / pow(10, q.error!.sqnrDB / 10)
            results.set(i, signal: signal, noise: noise, bits: Double(q.storedByteCount * 8))
        }
        let seconds = Date().timeIntervalSince(start)
        let parameters = tensors.reduce(0) { $0 + $1.0.elementCount }
        return (10 * log10(results.signal / results.noise), results.bits / Double(parameters), seconds)
    }

    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        var signal = 0.0, noise = 0.0, bits = 0.0
        init(count: Int) {}
        func set(_ i: Int, signal: Double, noise: Double, bits: Double) {
            lock.lock()
            self.signal += signal
            self.noise += noise
            self.bits += bits
            lock.unlock()
        }
    }

    @Test(.enabled(if: available))
    func foundationRecipeMeetsTheIssueTarget() throws {
        let m = Self.measure(try Self.encoderWeights(), recipe: .rtn(bits: 4, groupSize: 64))
        print("rtn affine 4-bit g64 minmax: SQNR \(m.sqnr) dB, \(m.bpw) bpw, \(m.seconds) s")
        #expect(m.sqnr >= 20.4)
        #expect(m.bpw <= 4.55)
    }

    @Test(.enabled(if: available && optimized))
    func defaultRecipeBeatsRoundToNearestWithinFourAndAHalfBits() throws {
        let tensors = try Self.encoderWeights()
        let m = Self.measure(tensors, recipe: .default)
        let rtn = Self.measure(tensors, recipe: .rtn(bits: 4, groupSize: 64))
        print("default \(QuantizationRecipe.default): SQNR \(m.sqnr) dB, \(m.bpw) bpw, \(m.seconds) s")
        #expect(m.bpw <= 4.5)
        #expect(m.sqnr > rtn.sqnr + 0.5)
    }

    @Test(.enabled(if: available && optimized && ProcessInfo.processInfo.environment["QPK_MEASURE_TABLE"] != nil))
    func printMethodTable() throws {
        let tensors = try Self.encoderWeights()
        print("| method | scheme | bits | group | search | outliers | bpw | SQNR dB | seconds |")
        print("|---|---|---|---|---|---|---|---|---|")
        for bits in [4, 3, 2, 8] {
            var recipes: [QuantizationRecipe] = []
            for scheme in QuantizationScheme.allCases {
                for group in [32, 64, 128, nil] as [Int?] {
                    for search in QuantizationRecipe.ScaleSearch.allCases {
                        recipes.append(QuantizationRecipe(
                            method: .rtn, scheme: scheme, bits: bits, groupSize: group, scaleSearch: search, outlierBudget: 0))
                    }
                }
            }
            if bits == 3 || bits == 4 {
                for search in QuantizationRecipe.ScaleSearch.allCases {
                    for kind in [QuantizationRecipe.OutlierKind.elements, .rows, .columns] {
                        // Fill the quarter bit that group 128 leaves below group 64's cost.
                        let budget = kind == .elements ? QuantizationRecipe.quarterBitElementBudget : 0.25 / 32
                        recipes.append(QuantizationRecipe(
                            method: .prequant, scheme: .affine, bits: bits, groupSize: 128, scaleSearch: search,
                            outlierBudget: budget, outlierKind: kind))
                    }
                    recipes.append(QuantizationRecipe(
                        method: .prequant, scheme: .affine, bits: bits, groupSize: 64, scaleSearch: search,
                        outlierBudget: 0.005, outlierKind: .elements))
                    for kind in [QuantizationRecipe.OutlierKind.elements, .rows, .columns] {
                        // Group 96 with PreQuant's 0.5% budget, capped at bits + 0.5 bpw.
                        recipes.append(QuantizationRecipe(
                            method: .prequant, scheme: .affine, bits: bits, groupSize: 96, scaleSearch: search,
                            outlierBudget: 0.005, outlierKind: kind, maxBitsPerWeight: Double(bits) + 0.5))
                    }
                }
            }
            let headline = ProcessInfo.processInfo.environment["QPK_MEASURE_TABLE"] == "headline"
            for r in recipes where !headline || (r.scheme == .affine && r.scaleSearch == .mse && (r.groupSize ?? 0) >= 64 && r.outlierKind != .columns) {
                let m = Self.measure(tensors, recipe: r)
                let group = r.groupSize.map(String.init) ?? "row"
                var outliers = r.effectiveOutlierBudget > 0
                    ? "\(r.outlierKind.resolved.rawValue) \(QuantizationRecipe.formatPercent(r.effectiveOutlierBudget))" : "-"
                if let cap = r.maxBitsPerWeight, r.effectiveOutlierBudget > 0 { outliers += " ≤\(cap) bpw" }
                print(String(
                    format: "| %@ | %@ | %d | %@ | %@ | %@ | %.3f | %.2f | %.2f |", r.method.rawValue, r.scheme.rawValue,
                    r.bits, group, r.scaleSearch.rawValue, outliers, m.bpw, m.sqnr, m.seconds))
            }
        }
    }
}

extension MiniLMMeasurementTests {
    @Test(.enabled(if: available && optimized && ProcessInfo.processInfo.environment["QPK_MEASURE_TIME"] != nil))
    func printTimeBreakdown() throws {
        let tensors = try Self.encoderWeights()
        for r in [
            QuantizationRecipe.rtn(bits: 4, groupSize: 128),
            QuantizationRecipe(method: .rtn, bits: 4, groupSize: 128, scaleSearch: .mse, outlierBudget: 0),
            QuantizationRecipe(method: .prequant, bits: 4, groupSize: 128, scaleSearch: .minmax,
                               outlierBudget: QuantizationRecipe.quarterBitElementBudget, outlierKind: .elements),
            QuantizationRecipe.default,
        ] {
            let m = Self.measure(tensors, recipe: r)
            print("\(r): \(m.seconds) s, \(m.sqnr) dB, \(m.bpw) bpw")
        }
    }
}

extension MiniLMMeasurementTests {
    /// `QPK_MEASURE_RECIPES="method,scheme,bits,group,search,kind,budget;…"` (group `row` for per-row),
    /// e.g. `prequant,affine,4,96,mse,elements,0.0026`: measures ad-hoc recipes on the encoder.
    @Test(.enabled(if: available && optimized && ProcessInfo.processInfo.environment["QPK_MEASURE_RECIPES"] != nil))
    func printAdHocRecipes() throws {
        let tensors = try Self.encoderWeights()
        let specs = ProcessInfo.processInfo.environment["QPK_MEASURE_RECIPES"]!.split(separator: ";")
        for spec in specs {
            let f = spec.split(separator: ",").map(String.init)
            guard f.count == 7, let method = QuantizationRecipe.Method(rawValue: f[0]),
                let scheme = QuantizationScheme(rawValue: f[1]), let bits = Int(f[2]),
                let group = QuantizationRecipe.parseGroupSize(f[3]),
                let search = QuantizationRecipe.ScaleSearch(rawValue: f[4]),
                let kind = QuantizationRecipe.OutlierKind(rawValue: f[5]), let budget = Double(f[6])
            else {
                Issue.record("cannot parse recipe '\(spec)'")
                continue
            }
            let recipe = QuantizationRecipe(
                method: method, scheme: scheme, bits: bits, groupSize: group, scaleSearch: search,
                outlierBudget: budget, outlierKind: kind)
            let m = Self.measure(tensors, recipe: recipe)
            print(String(format: "%@: %.3f bpw, %.2f dB, %.2f s", recipe.description, m.bpw, m.sqnr, m.seconds))
        }
    }
}
