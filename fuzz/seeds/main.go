// Command seeds writes the seed corpora of reprove's fuzz targets from real Go
// binaries. It is run by ci/fuzz; nothing it writes is committed.
//
//	go run . -buildinfo DIR -modinfo DIR BINARY...
//
// Real Go binaries are megabytes long, and libFuzzer mutates bytes at random
// positions: almost every mutation would land in machine code that no reader
// looks at. So the buildinfo seeds are small executables (a few KiB) in every
// container format Go reads build info from — ELF 32/64 LE/BE, Mach-O 32/64 and
// fat, PE32 and PE32+, XCOFF 32/64, Plan 9 — each carrying the build info blob
// and the build ID taken from the first BINARY, byte for byte, plus a pre-Go 1.18
// pointer-format variant. Every seed is checked with debug/buildinfo, the
// package `go version -m` uses, so a seed that Go would refuse is a bug here.
//
// The modinfo seeds are the module-info texts of every BINARY (sentinels
// removed), plus a few hand-written texts for the paths real binaries rarely
// take: replacements, quoted keys and values, malformed lines.
package main

import (
	"bytes"
	"crypto/sha1"
	"debug/buildinfo"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

const magic = "\xff Go buildinf:"

func main() {
	biDir := flag.String("buildinfo", "", "output directory for the buildinfo target's seeds")
	miDir := flag.String("modinfo", "", "output directory for the modinfo target's seeds")
	wrapIn := flag.String("wrap", "", "instead: wrap each module-info text of this directory in an ELF executable")
	wrapOut := flag.String("wrap-out", "", "output directory of -wrap")
	flag.Parse()
	if *wrapIn != "" && *wrapOut != "" && flag.NArg() > 0 {
		wrap(*wrapIn, *wrapOut, flag.Arg(0))
		return
	}
	if *biDir == "" || *miDir == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: seeds -buildinfo DIR -modinfo DIR BINARY...")
		fmt.Fprintln(os.Stderr, "       seeds -wrap DIR -wrap-out DIR BINARY")
		os.Exit(2)
	}
	var first *blob
	nmod := 0
	for _, path := range flag.Args() {
		data, err := os.ReadFile(path)
		check(err)
		b, err := findBlob(data)
		if err != nil {
			fail("%s: %v", path, err)
		}
		if first == nil {
			first = b
			first.buildID = findBuildID(data)
		}
		write(*miDir, b.modinfo)
		nmod++
	}
	for _, text := range handWrittenModinfo {
		write(*miDir, []byte(text))
		nmod++
	}
	n := 0
	for _, s := range executables(first) {
		bi, err := buildinfo.Read(bytes.NewReader(s.data))
		if err != nil {
			fail("seed %s: Go cannot read it: %v", s.name, err)
		}
		if bi.GoVersion != string(first.version) {
			fail("seed %s: Go reads version %q, want %q", s.name, bi.GoVersion, first.version)
		}
		write(*biDir, s.data)
		n++
	}
	fmt.Printf("seeds: %d executables, %d module-info texts\n", n, nmod)
}

func check(err error) {
	if err != nil {
		fail("%v", err)
	}
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "seeds: "+format+"\n", args...)
	os.Exit(1)
}

// write stores data under its SHA-1, as libFuzzer names corpus files.
func write(dir string, data []byte) {
	check(os.MkdirAll(dir, 0o755))
	sum := sha1.Sum(data)
	check(os.WriteFile(filepath.Join(dir, hex.EncodeToString(sum[:])), data, 0o644))
}

// wrap writes, for each module-info text in dir, an ELF executable whose build
// info carries that text (with its sentinels) and the Go version of binPath, so
// that `go version -m` and `reprove buildinfo` can be compared on the texts the
// modinfo fuzz target found. A text is given a final newline when it lacks one:
// without it, both tools ignore the whole text.
func wrap(dir, out, binPath string) {
	data, err := os.ReadFile(binPath)
	check(err)
	first, err := findBlob(data)
	if err != nil {
		fail("%s: %v", binPath, err)
	}
	first.buildID = findBuildID(data)
	entries, err := os.ReadDir(dir)
	check(err)
	check(os.MkdirAll(out, 0o755))
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		text, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if os.IsNotExist(err) {
			continue // a running fuzzer may have replaced it
		}
		check(err)
		if len(text) == 0 || text[len(text)-1] != '\n' {
			text = append(text, '\n')
		}
		mod := append(append([]byte(sentinelStart), text...), sentinelEnd...)
		raw := make([]byte, 32)
		copy(raw, magic)
		raw[14], raw[15] = 8, 2
		raw = binary.AppendUvarint(raw, uint64(len(first.version)))
		raw = append(raw, first.version...)
		raw = binary.AppendUvarint(raw, uint64(len(mod)))
		raw = append(raw, mod...)
		b := &blob{raw: raw, version: first.version, modinfo: text, buildID: first.buildID}
		check(os.WriteFile(filepath.Join(out, e.Name()), elf(b, true, binary.LittleEndian, 62, true, false), 0o755))
	}
}

// The 16-byte sentinels around module info (cmd/go/internal/modload).
const (
	sentinelStart = "0w\xaf\x0c\x92t\x08\x02A\xe1\xc1\x07\xe6\xd6\x18\xe6"
	sentinelEnd   = "\xf92C1\x86\x18 r\x00\x82B\x10A\x16\xd8\xf2"
)

// blob is the inline (Go >= 1.18) build info of a binary.
type blob struct {
	raw     []byte // header, then the two length-prefixed strings
	version []byte
	modinfo []byte // without the 16-byte sentinels
	buildID []byte
}

func findBlob(data []byte) (*blob, error) {
	for off := 0; ; {
		i := bytes.Index(data[off:], []byte(magic))
		if i < 0 {
			return nil, fmt.Errorf("no build info")
		}
		at := off + i
		off = at + 1
		if at%16 != 0 || len(data)-at < 32 || data[at+15]&2 == 0 {
			continue
		}
		p := at + 32
		vers, n := binary.Uvarint(data[p:])
		if n <= 0 || uint64(len(data)-p-n) < vers {
			continue
		}
		version := data[p+n : p+n+int(vers)]
		p += n + int(vers)
		mlen, n := binary.Uvarint(data[p:])
		if n <= 0 || uint64(len(data)-p-n) < mlen {
			continue
		}
		mod := data[p+n : p+n+int(mlen)]
		p += n + int(mlen)
		if len(mod) >= 33 && mod[len(mod)-17] == '\n' {
			mod = mod[16 : len(mod)-16]
		} else {
			mod = nil
		}
		return &blob{raw: data[at:p], version: version, modinfo: mod}, nil
	}
}

// findBuildID returns the quoted build ID string Go writes at the start of the text.
func findBuildID(data []byte) []byte {
	const prefix, suffix = "\xff Go build ID: \"", "\"\n \xff"
	if i := bytes.Index(data, []byte(prefix)); i >= 0 {
		if j := bytes.Index(data[i:], []byte(suffix)); j >= 0 {
			return data[i : i+j+len(suffix)]
		}
	}
	return []byte(prefix + "seed-action-id/seed-content-id" + suffix)
}

// rawID is the build ID itself, as the ELF note holds it.
func (b *blob) rawID() []byte {
	return b.buildID[len("\xff Go build ID: \"") : len(b.buildID)-len("\"\n \xff")]
}

// pointerBlob is the same build info in the pre-Go 1.18 form, for a blob placed
// at virtual address addr: a header whose two pointers address Go string
// headers {data, len}, followed by the headers and the string bytes.
func (b *blob) pointerBlob(addr uint64, ptrSize int, bo binary.ByteOrder) []byte {
	var mod []byte
	if len(b.modinfo) > 0 {
		// The string keeps its 16-byte sentinels, as in the inline form.
		mod = append(append([]byte(sentinelStart), b.modinfo...), sentinelEnd...)
	}
	w := &buf{bo: bo}
	w.bytes(0, []byte(magic))
	w.u8(14, byte(ptrSize))
	if bo == binary.BigEndian {
		w.u8(15, 1)
	}
	is64 := ptrSize == 8
	verHdr, modHdr := addr+32, addr+32+uint64(2*ptrSize)
	verData := modHdr + uint64(2*ptrSize)
	modData := verData + uint64(len(b.version))
	w.uN(16, is64, verHdr)
	w.uN(16+ptrSize, is64, modHdr)
	w.uN(32, is64, verData)
	w.uN(32+ptrSize, is64, uint64(len(b.version)))
	w.uN(32+2*ptrSize, is64, modData)
	w.uN(32+3*ptrSize, is64, uint64(len(mod)))
	w.bytes(32+4*ptrSize, b.version)
	w.bytes(32+4*ptrSize+len(b.version), mod)
	return w.b
}

type seed struct {
	name string
	data []byte
}

func executables(b *blob) []seed {
	le, be := binary.LittleEndian, binary.BigEndian
	var seeds []seed
	add := func(name string, data []byte) { seeds = append(seeds, seed{name, data}) }
	// ELF: amd64, 386, ppc64 (big-endian 64-bit), mips (big-endian 32-bit).
	add("elf64le", elf(b, true, le, 62, true, false))
	add("elf32le", elf(b, false, le, 3, true, false))
	add("elf64be", elf(b, true, be, 21, true, false))
	add("elf32be", elf(b, false, be, 8, true, false))
	add("elf64le-nosection", elf(b, true, le, 62, false, false))
	add("elf64le-pointers", elf(b, true, le, 62, true, true))
	add("elf32be-pointers", elf(b, false, be, 8, true, true))
	amd64 := machO(b, true, 0x01000007, 3, false)
	arm64 := machO(b, true, 0x0100000c, 0, false)
	add("macho64", amd64)
	add("macho64-symtab", machO(b, true, 0x01000007, 3, true))
	add("macho32", machO(b, false, 7, 3, false))
	add("macho-fat", fat([][3]uint32{{0x01000007, 3}, {0x0100000c, 0}}, [][]byte{amd64, arm64}))
	add("pe32plus", pe(b, true, false))
	add("pe32plus-symtab", pe(b, true, true))
	add("pe32", pe(b, false, false))
	add("xcoff64", xcoff(b, true))
	add("xcoff32", xcoff(b, false))
	add("plan9-amd64", plan9(b, true))
	add("plan9-386", plan9(b, false))
	return seeds
}

// buf is a byte buffer written at offsets, growing as needed.
type buf struct {
	b  []byte
	bo binary.ByteOrder
}

func (w *buf) grow(n int) {
	if len(w.b) < n {
		w.b = append(w.b, make([]byte, n-len(w.b))...)
	}
}
func (w *buf) bytes(off int, p []byte) { w.grow(off + len(p)); copy(w.b[off:], p) }
func (w *buf) u8(off int, v uint8)     { w.grow(off + 1); w.b[off] = v }
func (w *buf) u16(off int, v uint16)   { w.grow(off + 2); w.bo.PutUint16(w.b[off:], v) }
func (w *buf) u32(off int, v uint32)   { w.grow(off + 4); w.bo.PutUint32(w.b[off:], v) }
func (w *buf) u64(off int, v uint64)   { w.grow(off + 8); w.bo.PutUint64(w.b[off:], v) }

// uN writes a 4- or 8-byte word.
func (w *buf) uN(off int, is64 bool, v uint64) {
	if is64 {
		w.u64(off, v)
	} else {
		w.u32(off, uint32(v))
	}
}

func align(n, a int) int { return (n + a - 1) / a * a }

// elf writes an executable with a PT_NOTE segment (Go and GNU build ID notes),
// a writable PT_LOAD segment holding the build info and, when withSection is
// set, a .go.buildinfo section over it.
func elf(b *blob, is64 bool, bo binary.ByteOrder, machine uint16, withSection, pointers bool) []byte {
	w := &buf{bo: bo}
	ehsize, phentsize, shentsize := 52, 32, 40
	if is64 {
		ehsize, phentsize, shentsize = 64, 56, 64
	}
	const base = 0x400000
	phoff := ehsize
	noteOff := align(phoff+2*phentsize, 16)
	note := func(name string, typ uint32, desc []byte) []byte {
		n := &buf{bo: bo}
		n.u32(0, uint32(len(name)))
		n.u32(4, uint32(len(desc)))
		n.u32(8, typ)
		n.bytes(12, []byte(name))
		n.bytes(align(12+len(name), 4), desc)
		n.grow(align(len(n.b), 4))
		return n.b
	}
	goNote := note("Go\x00\x00", 4, b.rawID())
	gnuNote := note("GNU\x00", 3, bytes.Repeat([]byte{0xab}, 20))
	w.bytes(noteOff, goNote)
	w.bytes(noteOff+len(goNote), gnuNote)
	notesLen := len(goNote) + len(gnuNote)
	dataOff := align(noteOff+notesLen, 16)
	data := b.raw
	if pointers {
		ptr := 4
		if is64 {
			ptr = 8
		}
		data = b.pointerBlob(uint64(base+dataOff), ptr, bo)
	}
	w.bytes(dataOff, data)
	dataLen := align(len(data), 16)
	names := []byte("\x00.note.go.buildid\x00.go.buildinfo\x00.shstrtab\x00")
	strOff := dataOff + dataLen
	w.bytes(strOff, names)
	shoff := align(strOff+len(names), 8)
	type sec struct {
		name, typ uint32
		flags     uint64
		addr      uint64
		off, size int
		addralign uint64
	}
	secs := []sec{{}, {1, 7, 2, base + uint64(noteOff), noteOff, len(goNote), 4}}
	if withSection {
		secs = append(secs, sec{18, 1, 3, base + uint64(dataOff), dataOff, dataLen, 16})
	}
	secs = append(secs, sec{32, 3, 0, 0, strOff, len(names), 1})
	for i, s := range secs {
		o := shoff + i*shentsize
		w.u32(o, s.name)
		w.u32(o+4, s.typ)
		if is64 {
			w.u64(o+8, s.flags)
			w.u64(o+16, s.addr)
			w.u64(o+24, uint64(s.off))
			w.u64(o+32, uint64(s.size))
			w.u64(o+48, s.addralign)
		} else {
			w.u32(o+8, uint32(s.flags))
			w.u32(o+12, uint32(s.addr))
			w.u32(o+16, uint32(s.off))
			w.u32(o+20, uint32(s.size))
			w.u32(o+32, uint32(s.addralign))
		}
	}
	w.grow(shoff + len(secs)*shentsize)
	// Program headers: the notes, then the data.
	phdr := func(i int, typ, flags uint32, off, size int, palign uint64) {
		o := phoff + i*phentsize
		w.u32(o, typ)
		if is64 {
			w.u32(o+4, flags)
			w.u64(o+8, uint64(off))
			w.u64(o+16, base+uint64(off))
			w.u64(o+24, base+uint64(off))
			w.u64(o+32, uint64(size))
			w.u64(o+40, uint64(size))
			w.u64(o+48, palign)
		} else {
			w.u32(o+4, uint32(off))
			w.u32(o+8, base+uint32(off))
			w.u32(o+12, base+uint32(off))
			w.u32(o+16, uint32(size))
			w.u32(o+20, uint32(size))
			w.u32(o+24, flags)
			w.u32(o+28, uint32(palign))
		}
	}
	phdr(0, 4, 4, noteOff, notesLen, 4)
	phdr(1, 1, 6, dataOff, dataLen, 0x1000)
	// The ELF header.
	class, order := byte(1), byte(1)
	if is64 {
		class = 2
	}
	if bo == binary.BigEndian {
		order = 2
	}
	w.bytes(0, []byte{0x7f, 'E', 'L', 'F', class, order, 1})
	w.u16(16, 2) // ET_EXEC
	w.u16(18, machine)
	w.u32(20, 1)
	if is64 {
		w.u64(24, base)
		w.u64(32, uint64(phoff))
		w.u64(40, uint64(shoff))
		w.u16(52, uint16(ehsize))
		w.u16(54, uint16(phentsize))
		w.u16(56, 2)
		w.u16(58, uint16(shentsize))
		w.u16(60, uint16(len(secs)))
		w.u16(62, uint16(len(secs)-1))
	} else {
		w.u32(24, base)
		w.u32(28, uint32(phoff))
		w.u32(32, uint32(shoff))
		w.u16(40, uint16(ehsize))
		w.u16(42, uint16(phentsize))
		w.u16(44, 2)
		w.u16(46, uint16(shentsize))
		w.u16(48, uint16(len(secs)))
		w.u16(50, uint16(len(secs)-1))
	}
	return w.b
}

// machO writes a little-endian executable: __PAGEZERO, __TEXT with a __text
// section that starts with the build ID, __DATA with __go_buildinfo, and with
// withSymtab an LC_SYMTAB (one symbol) and an LC_DYSYMTAB.
func machO(b *blob, is64 bool, cpu, sub uint32, withSymtab bool) []byte {
	w := &buf{bo: binary.LittleEndian}
	hsize, segsize, sectsize, segcmd := 28, 56, 68, uint32(0x1)
	if is64 {
		hsize, segsize, sectsize, segcmd = 32, 72, 80, 0x19
	}
	const page = 0x1000
	textOff, dataOff := page, 2*page
	textLen := align(len(b.buildID), 16)
	dataLen := align(len(b.raw), 16)
	symOff := dataOff + dataLen
	strtab := []byte("\x00_main\x00")
	strOff := symOff + 16
	off := hsize
	ncmds := 0
	segment := func(name string, addr, memsz uint64, fileoff, filesz int, prot uint32, sect string, saddr uint64, ssize, soff int) {
		nsect := 0
		if sect != "" {
			nsect = 1
		}
		size := segsize + nsect*sectsize
		w.u32(off, segcmd)
		w.u32(off+4, uint32(size))
		w.bytes(off+8, []byte(name))
		if is64 {
			w.u64(off+24, addr)
			w.u64(off+32, memsz)
			w.u64(off+40, uint64(fileoff))
			w.u64(off+48, uint64(filesz))
			w.u32(off+56, prot)
			w.u32(off+60, prot)
			w.u32(off+64, uint32(nsect))
		} else {
			w.u32(off+24, uint32(addr))
			w.u32(off+28, uint32(memsz))
			w.u32(off+32, uint32(fileoff))
			w.u32(off+36, uint32(filesz))
			w.u32(off+40, prot)
			w.u32(off+44, prot)
			w.u32(off+48, uint32(nsect))
		}
		if sect != "" {
			s := off + segsize
			w.bytes(s, []byte(sect))
			w.bytes(s+16, []byte(name))
			if is64 {
				w.u64(s+32, saddr)
				w.u64(s+40, uint64(ssize))
				w.u32(s+48, uint32(soff))
				w.u32(s+52, 4)
			} else {
				w.u32(s+32, uint32(saddr))
				w.u32(s+36, uint32(ssize))
				w.u32(s+40, uint32(soff))
				w.u32(s+44, 4)
			}
		}
		off += size
		ncmds++
	}
	const vmbase = 0x100000000
	segment("__PAGEZERO", 0, vmbase, 0, 0, 0, "", 0, 0, 0)
	segment("__TEXT", vmbase, page*2, 0, textOff+textLen, 5, "__text", vmbase+page, textLen, textOff)
	segment("__DATA", vmbase+2*page, page, dataOff, dataLen, 3, "__go_buildinfo", vmbase+2*page, dataLen, dataOff)
	if withSymtab {
		w.u32(off, 0x2)
		w.u32(off+4, 24)
		w.u32(off+8, uint32(symOff))
		w.u32(off+12, 1)
		w.u32(off+16, uint32(strOff))
		w.u32(off+20, uint32(len(strtab)))
		off += 24
		w.u32(off, 0xb)
		w.u32(off+4, 80)
		w.u32(off+24, 0) // iundefsym
		w.u32(off+28, 1) // nundefsym
		off += 80
		ncmds += 2
		w.u32(symOff, 1) // n_strx: "_main"
		w.u8(symOff+4, 0x0f)
		w.u8(symOff+5, 1)
		w.bytes(strOff, strtab)
	}
	magic := uint32(0xfeedface)
	if is64 {
		magic = 0xfeedfacf
	}
	w.u32(0, magic)
	w.u32(4, cpu)
	w.u32(8, sub)
	w.u32(12, 2) // MH_EXECUTE
	w.u32(16, uint32(ncmds))
	w.u32(20, uint32(off-hsize))
	w.bytes(textOff, b.buildID)
	w.bytes(dataOff, b.raw)
	w.grow(dataOff + dataLen)
	return w.b
}

// fat writes a universal binary: big-endian header, 20-byte arch entries,
// page-aligned images.
func fat(arches [][3]uint32, images [][]byte) []byte {
	w := &buf{bo: binary.BigEndian}
	w.u32(0, 0xcafebabe)
	w.u32(4, uint32(len(images)))
	off := 0x1000
	for i, img := range images {
		e := 8 + 20*i
		w.u32(e, arches[i][0])
		w.u32(e+4, arches[i][1])
		w.u32(e+8, uint32(off))
		w.u32(e+12, uint32(len(img)))
		w.u32(e+16, 12)
		w.bytes(off, img)
		off = align(off+len(img), 0x1000)
	}
	return w.b
}

// pe writes an executable with .text (the build ID) and .data (the build
// info) and, with withSymtab, a COFF symbol table, a string table, and a .data
// section named through it ("/4").
func pe(b *blob, plus, withSymtab bool) []byte {
	w := &buf{bo: binary.LittleEndian}
	const peOff, fileAlign = 0x80, 0x200
	w.bytes(0, []byte("MZ"))
	w.u32(0x3c, peOff)
	w.bytes(peOff, []byte("PE\x00\x00"))
	fh := peOff + 4
	optSize := 96 + 16*8
	machine := uint16(0x14c)
	if plus {
		optSize, machine = 112+16*8, 0x8664
	}
	textRaw := align(len(b.buildID), fileAlign)
	dataRaw := align(len(b.raw), fileAlign)
	shOff := fh + 20 + optSize
	textOff := align(shOff+2*40, fileAlign)
	dataOff := textOff + textRaw
	symOff := dataOff + dataRaw
	w.u16(fh, machine)
	w.u16(fh+2, 2)
	if withSymtab {
		w.u32(fh+8, uint32(symOff))
		w.u32(fh+12, 1)
	}
	w.u16(fh+16, uint16(optSize))
	w.u16(fh+18, 0x22)
	o := fh + 20
	const imageBase = 0x400000
	if plus {
		w.u16(o, 0x20b)
		w.u64(o+24, imageBase)
		w.u32(o+108, 16)
	} else {
		w.u16(o, 0x10b)
		w.u32(o+28, imageBase)
		w.u32(o+92, 16)
	}
	w.u32(o+32, 0x1000)
	w.u32(o+36, fileAlign)
	section := func(i int, name string, vsize, vaddr, rawSize, rawPtr int, chars uint32) {
		s := shOff + 40*i
		w.bytes(s, []byte(name))
		w.u32(s+8, uint32(vsize))
		w.u32(s+12, uint32(vaddr))
		w.u32(s+16, uint32(rawSize))
		w.u32(s+20, uint32(rawPtr))
		w.u32(s+36, chars)
	}
	section(0, ".text", len(b.buildID), 0x1000, textRaw, textOff, 0x60000020)
	dataName := ".data"
	if withSymtab {
		dataName = "/4"
	}
	section(1, dataName, len(b.raw), 0x2000, dataRaw, dataOff, 0xc0000040)
	w.bytes(textOff, b.buildID)
	w.bytes(dataOff, b.raw)
	w.grow(symOff)
	if withSymtab {
		w.bytes(symOff, []byte("main\x00\x00\x00\x00"))
		w.u16(symOff+12, 1)
		w.u8(symOff+16, 2)
		strtab := []byte(".data\x00")
		w.u32(symOff+18, uint32(4+len(strtab)))
		w.bytes(symOff+22, strtab)
	}
	return w.b
}

// xcoff writes a big-endian executable with .text (the build ID) and .data
// (the build info), one C_FILE symbol and a string table.
func xcoff(b *blob, is64 bool) []byte {
	w := &buf{bo: binary.BigEndian}
	fhsize, shsize := 20, 40
	if is64 {
		fhsize, shsize = 24, 72
	}
	textOff := align(fhsize+2*shsize, 16)
	textLen := align(len(b.buildID), 16)
	dataOff := textOff + textLen
	dataLen := align(len(b.raw), 16)
	symOff := dataOff + dataLen
	const textAddr, dataAddr = 0x10000000, 0x20000000
	section := func(i int, name string, vaddr uint64, size, ptr int, flags uint32) {
		s := fhsize + shsize*i
		w.bytes(s, []byte(name))
		if is64 {
			w.u64(s+8, vaddr)
			w.u64(s+16, vaddr)
			w.u64(s+24, uint64(size))
			w.u64(s+32, uint64(ptr))
			w.u32(s+64, flags)
		} else {
			w.u32(s+8, uint32(vaddr))
			w.u32(s+12, uint32(vaddr))
			w.u32(s+16, uint32(size))
			w.u32(s+20, uint32(ptr))
			w.u32(s+36, flags)
		}
	}
	section(0, ".text", textAddr, textLen, textOff, 0x20)
	section(1, ".data", dataAddr, dataLen, dataOff, 0x40)
	w.bytes(textOff, b.buildID)
	w.bytes(dataOff, b.raw)
	// One symbol (C_FILE, no auxiliary entries) and a string table with its name.
	strtab := []byte("main.go\x00")
	if is64 {
		w.u16(0, 0x01f7)
		w.u16(2, 2)
		w.u64(8, uint64(symOff))
		w.u32(20, 1)
		w.u32(symOff+8, 4) // n_offset
	} else {
		w.u16(0, 0x01df)
		w.u16(2, 2)
		w.u32(8, uint32(symOff))
		w.u32(12, 1)
		w.bytes(symOff, []byte("main.go"))
	}
	w.u16(symOff+12, 0xfffe) // N_DEBUG
	w.u8(symOff+16, 0x67)    // C_FILE
	w.u32(symOff+18, uint32(4+len(strtab)))
	w.bytes(symOff+22, strtab)
	return w.b
}

// plan9 writes an a.out: header, text (the build ID), data (the build info).
func plan9(b *blob, amd64 bool) []byte {
	w := &buf{bo: binary.BigEndian}
	hdr, m := 32, uint32(0x1eb)
	if amd64 {
		hdr, m = 40, 0x8a97
	}
	// The data section starts at hdr+text: keep it 16-byte aligned.
	text := align(hdr+len(b.buildID), 16) - hdr
	data := align(len(b.raw), 16)
	w.u32(0, m)
	w.u32(4, uint32(text))
	w.u32(8, uint32(data))
	w.bytes(hdr, b.buildID)
	w.bytes(hdr+text, b.raw)
	w.grow(hdr + text + data)
	return w.b
}

// Module-info texts that real binaries rarely carry.
var handWrittenModinfo = []string{
	"path\texample.com/app\nmod\texample.com/app\t(devel)\t\n" +
		"dep\tgolang.org/x/text\tv0.14.0\th1:ScX5w1eTa3QqT8oi6+ziP7dTV1S2+ALU0bI+0zXKWiQ=\n" +
		"dep\texample.com/lib\tv1.0.0\n=>\t../lib\t(devel)\t\n" +
		"dep\texample.com/fork\tv1.2.3\th1:orig=\n=>\texample.com/myfork\tv1.2.4\th1:fork=\n" +
		"build\t-buildmode=exe\nbuild\t-compiler=gc\n" +
		"build\t-ldflags=\"-s -w -X 'main.version=1.0 beta'\"\n" +
		"build\t-tags=netgo,osusergo\nbuild\tCGO_ENABLED=0\nbuild\tGOARCH=amd64\nbuild\tGOOS=linux\nbuild\tGOAMD64=v3\n" +
		"build\tvcs=git\nbuild\tvcs.revision=0123456789abcdef0123456789abcdef01234567\n" +
		"build\tvcs.time=2024-01-02T03:04:05Z\nbuild\tvcs.modified=true\n",
	"mod\tm\tv1\n=>\tr\tv2\th1:r=\n",
	"build\t\"key with space\"=`raw value`\nbuild\t`k`=\"v\\tx\\u00e9\\xff\"\nbuild\tempty=\n",
	"build\t\"k\"x\n",
	"build\tk v=x\n",
	"build\t=v\n",
	"build\tnoequals\n",
	"dep\ta\n",
	"dep\ta\tb\tc\td\n",
	"=>\ta\tb\tc\n",
	"mod\ta\tb\n=>\ta\tb\n",
	"path\tx\ngo\tgo1.22\nunknown line\n\n",
	"path\tno newline",
}
