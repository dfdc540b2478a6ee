import Foundation
import FuzzSupport
import MusterKit

// One input = the bytes of an import file. The reader reads it through a descriptor as
// `muster import` does; whatever it accepts must survive a round trip through CSVWriter
// (same records back), and the header goes through ColumnMapping like an import's.
let input = scratchFile("input")
let output = scratchFile("output")
let manifest: Manifest = {
    let yaml = """
        title: Fuzz
        goal: 10
        fields:
          - name: region
            label: "Where do you work from?"
            options: [Lyon, Paris]
          - name: languages
        consent:
          updates: "Keep me informed"
        """
    return Manifest.load(data: Data(yaml.utf8), displayPath: "campaign.yaml").0!
}()

/// An unlinked temporary file, reused for every input.
func scratchFile(_ name: String) -> Int32 {
    let path = NSTemporaryDirectory() + "/muster-fuzz-csv-\(getpid())-\(name)"
    let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "cannot create \(path)")
    unlink(path)
    return fd
}

func replace(_ fd: Int32, with bytes: UnsafeBufferPointer<UInt8>) {
    precondition(ftruncate(fd, 0) == 0)
    if let base = bytes.baseAddress { precondition(pwrite(fd, base, bytes.count, 0) == bytes.count) }
    precondition(lseek(fd, 0, SEEK_SET) == 0)
}

func readAll(_ fd: Int32) -> (records: [[String]], delimiter: UInt8, error: CSVFileError?) {
    let reader = CSVReader(descriptor: fd)
    var records: [[String]] = []
    var lastLine = 0
    do {
        while let record = try reader.next() {
            require(record.line > lastLine, "record lines do not increase: \(record.line) after \(lastLine)")
            require(!record.fields.isEmpty, "a record without fields")
            lastLine = record.line
            records.append(record.fields)
        }
        return (records, reader.delimiter, nil)
    } catch let error as CSVFileError {
        require(error.line >= 1, "error without a line: \(error)")
        return (records, reader.delimiter, error)
    } catch {
        require(false, "unexpected error type: \(error)")
        fatalError()
    }
}

func fuzzCSV(_ data: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    replace(input, with: bytes(data, count))
    let first = readAll(input)
    if let header = first.records.first {
        _ = try? ColumnMapping.make(header: header, manifest: manifest, overrides: [])
    }
    guard first.error == nil else { return 0 }

    // Round trip: write what was read with the same delimiter, read it back.
    precondition(ftruncate(output, 0) == 0 && lseek(output, 0, SEEK_SET) == 0)
    let bom: [UInt8] = [0xEF, 0xBB, 0xBF] // one BOM, so a BOM inside the first field survives
    bom.withUnsafeBufferPointer { _ = write(output, $0.baseAddress!, 3) }
    let writer = CSVWriter(descriptor: output, neutralisesFormulas: false, delimiter: first.delimiter)
    // A record of one empty field is written as a blank line, which readers skip.
    let kept = first.records.filter { $0 != [""] }
    do {
        for record in kept { try writer.write(record) }
        try writer.flush()
    } catch {
        require(false, "CSVWriter failed: \(error)")
    }
    precondition(lseek(output, 0, SEEK_SET) == 0)
    let second = readAll(output)
    require(second.error == nil, "CSVWriter output unreadable: \(second.error!)")
    // The delimiter is sniffed from the first line; only compare when it is the same.
    if second.delimiter == first.delimiter {
        require(second.records == kept, "round trip changed the records: \(kept) -> \(second.records)")
    }
    return 0
}

runFuzzer(fuzzCSV)
