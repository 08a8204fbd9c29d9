//! The program's loaded modules (the executable and its shared libraries), read once from
//! `/proc/self/maps`: an instruction pointer becomes a module's build-id and an address in
//! that module's ELF file, which means the same in every process of a build whatever
//! address-space randomisation did, and which debug info can be looked up in later, in
//! process or by `whakapapa-collector symbolize`.
//!
//! Symbols are looked up here with `addr2line` rather than `backtrace::resolve`: backtrace
//! holds one process-wide lock while it loads debug info, and `backtrace::trace` on the
//! request path takes the same lock, so a request would wait for the warm-up's first load.

use crate::wire::Address;
use addr2line::Loader;
use object::elf;
use object::read::elf::{FileHeader as _, ProgramHeader as _};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, PoisonError};

/// One symbol an address resolves to: function, source file and line, as debug info has them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Symbol {
    pub(crate) function: Option<Arc<str>>,
    pub(crate) file: Option<Arc<str>>,
    pub(crate) line: Option<u32>,
}

struct Module {
    path: String,
    build_id: Option<Arc<str>>,
    /// Opened at the first lookup; `None` when the file cannot be read (replaced on disk).
    loader: OnceLock<Option<Mutex<Loader>>>,
}

/// An executable mapping: `[start, end)` holds the module's code at `address + bias`.
struct Mapping {
    start: usize,
    end: usize,
    bias: u64,
    module: Arc<Module>,
}

static MAPPINGS: LazyLock<Vec<Mapping>> = LazyLock::new(read_maps);

/// A module with its executable segments: (file offset, size, address) each.
type Opened = (Arc<Module>, Vec<(u64, u64, u64)>);

/// Where the return address `ip` is: its module's build-id and the call's address there.
pub(crate) fn address(ip: usize) -> Option<Address> {
    let (mapping, offset) = locate(ip)?;
    Some(Address {
        build_id: mapping.module.build_id.as_deref()?.to_owned(),
        offset,
    })
}

/// The addresses of a stack's return addresses, those in modules with a build-id.
pub(crate) fn addresses(ips: &[usize]) -> Vec<Address> {
    ips.iter().filter_map(|&ip| address(ip)).collect()
}

/// The symbols of the return address `ip`, innermost inlined frame first: names and lines
/// from the module's debug info, else the symbol table's name alone; empty when unknown.
pub(crate) fn symbols(ip: usize) -> Vec<Symbol> {
    let Some((mapping, offset)) = locate(ip) else {
        return Vec::new();
    };
    let module = &mapping.module;
    let loader = module
        .loader
        .get_or_init(|| Loader::new(&module.path).ok().map(Mutex::new));
    let Some(loader) = loader else {
        return Vec::new();
    };
    let loader = loader.lock().unwrap_or_else(PoisonError::into_inner);
    resolve(&loader, offset)
}

/// The symbols at `offset` of the file `loader` read, kept (the cache holds them).
pub(crate) fn resolve(loader: &Loader, offset: u64) -> Vec<Symbol> {
    let mut out = Vec::new();
    whakapapa_wire::stack::symbols_at(loader, offset, |s| {
        out.push(Symbol {
            function: s.function.map(Arc::from),
            file: s.file.map(Arc::from),
            line: s.line,
        })
    });
    out
}

fn locate(ip: usize) -> Option<(&'static Mapping, u64)> {
    // The call instruction is before the return address.
    let ip = ip.checked_sub(1)?;
    let maps = &*MAPPINGS;
    let i = maps.partition_point(|m| m.start <= ip).checked_sub(1)?;
    let mapping = &maps[i];
    (ip < mapping.end).then(|| (mapping, (ip as u64).wrapping_add(mapping.bias)))
}

fn read_maps() -> Vec<Mapping> {
    let Ok(text) = std::fs::read_to_string("/proc/self/maps") else {
        return Vec::new();
    };
    let mut modules: Vec<(String, Option<Opened>)> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(m) = parse_line(line) else { continue };
        let module = match modules.iter().find(|(p, _)| *p == m.path) {
            Some((_, module)) => module.clone(),
            None => {
                let module = open_module(m.path);
                modules.push((m.path.to_owned(), module.clone()));
                module
            }
        };
        let Some((module, segments)) = module else {
            continue;
        };
        // The segment this mapping starts in: file offsets and addresses keep their distance
        // within it.
        let segment = segments.iter().find(|(offset, size, _)| {
            offset & !0xfff <= m.offset && m.offset < offset.saturating_add(*size)
        });
        if let Some(&(seg_offset, _, seg_address)) = segment {
            let bias = m
                .offset
                .wrapping_add(seg_address)
                .wrapping_sub(seg_offset)
                .wrapping_sub(m.start as u64);
            out.push(Mapping {
                start: m.start,
                end: m.end,
                bias,
                module,
            });
        }
    }
    out.sort_by_key(|m| m.start);
    out
}

/// The module at `path`: its build-id and executable segments (file offset, size, address).
/// Only the ELF header, the program headers and the notes are read: not the sections or the
/// symbol table, which in a debug build run to megabytes.
fn open_module(path: &str) -> Option<Opened> {
    let file = std::fs::File::open(path).ok()?;
    let data = object::read::ReadCache::new(file);
    let header = elf::FileHeader64::<object::Endianness>::parse(&data).ok()?;
    let endian = header.endian().ok()?;
    let mut build_id = None;
    let mut segments = Vec::new();
    for ph in header.program_headers(endian, &data).ok()? {
        if ph.p_type(endian) == elf::PT_NOTE
            && let Ok(Some(mut notes)) = ph.notes(endian, &data)
        {
            while let Ok(Some(note)) = notes.next() {
                if note.name() == elf::ELF_NOTE_GNU && note.n_type(endian) == elf::NT_GNU_BUILD_ID {
                    let hex: String = note.desc().iter().map(|b| format!("{b:02x}")).collect();
                    build_id = Some(Arc::from(hex));
                }
            }
        }
        // Executable mappings hold executable segments (a page may be shared with the segment
        // before, so the file offset alone does not tell).
        if ph.p_type(endian) == elf::PT_LOAD && ph.p_flags(endian).contains(elf::PF_X) {
            segments.push((ph.p_offset(endian), ph.p_filesz(endian), ph.p_vaddr(endian)));
        }
    }
    let module = Module {
        path: path.to_owned(),
        build_id,
        loader: OnceLock::new(),
    };
    Some((Arc::new(module), segments))
}

struct MapsLine<'a> {
    start: usize,
    end: usize,
    offset: u64,
    path: &'a str,
}

/// An executable, file-backed line of `/proc/self/maps`.
fn parse_line(line: &str) -> Option<MapsLine<'_>> {
    let mut fields = line.splitn(6, ' ');
    let (range, perms, offset) = (fields.next()?, fields.next()?, fields.next()?);
    let (_dev, _inode) = (fields.next()?, fields.next()?);
    let path = fields.next()?.trim_start();
    if !perms.contains('x') || !path.starts_with('/') || path.ends_with(" (deleted)") {
        return None;
    }
    let (start, end) = range.split_once('-')?;
    Some(MapsLine {
        start: usize::from_str_radix(start, 16).ok()?,
        end: usize::from_str_radix(end, 16).ok()?,
        offset: u64::from_str_radix(offset, 16).ok()?,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines() {
        let m =
            parse_line("55d0c8a00000-55d0c8b00000 r-xp 00012000 fd:01 1234          /usr/bin/app")
                .unwrap();
        assert_eq!(
            (m.start, m.end, m.offset, m.path),
            (0x55d0c8a00000, 0x55d0c8b00000, 0x12000, "/usr/bin/app")
        );
        assert!(parse_line("7ffd1000-7ffd2000 r-xp 00000000 00:00 0  [vdso]").is_none());
        assert!(
            parse_line("55d0c8a00000-55d0c8b00000 r--p 00000000 fd:01 1234 /usr/bin/app").is_none()
        );
        assert!(parse_line("55d0-55d1 r-xp 0 fd:01 1 /tmp/app (deleted)").is_none());
        assert!(parse_line("garbage").is_none());
    }

    #[test]
    fn this_test_binary_has_a_build_id_and_its_own_frames() {
        let mut ips = Vec::new();
        backtrace::trace(|frame| {
            ips.push(frame.ip() as usize);
            ips.len() < 8
        });
        let address = ips
            .iter()
            .find_map(|&ip| address(ip))
            .expect("an address in this binary");
        assert!(address.build_id.len() >= 16, "{address:?}");
        let names: Vec<String> = ips
            .iter()
            .flat_map(|&ip| symbols(ip))
            .filter_map(|s| s.function.map(|f| f.to_string()))
            .collect();
        assert!(
            names
                .iter()
                .any(|n| n.contains("this_test_binary_has_a_build_id")),
            "{names:?}"
        );
    }
}
