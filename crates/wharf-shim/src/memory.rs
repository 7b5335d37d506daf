//! Keeping the long-lived shim small. Setting a container up runs code the event loop never
//! needs again (the runtime, config parsing), and the kernel maps file pages 64 KiB at a time
//! around each fault, so after setup most of the binary's and libc's text is resident. Once
//! set up, the shim drops those read-only file pages from its page tables (they stay in the
//! page cache, shared with every other shim) and the freed heap; the event loop faults back
//! in only what it uses.

/// Releases read-only, file-backed pages that hold no private (relocated) data, the dead
/// part of the main stack, and the freed heap. Everything is computed first and the
/// madvise calls come last, so that as little code as possible runs (and faults its 64 KiB
/// back in) after them.
pub fn release_setup_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut ranges = droppable(&smaps);
    ranges.extend(dead_stack(&smaps));
    drop(smaps);
    // SAFETY: malloc_trim only returns free heap memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    for (start, end) in ranges {
        // SAFETY: each range is either a whole read-only private file mapping without
        // anonymous (copy-on-write) pages, whose page-table entries can go (the next access
        // re-reads the same bytes from the page cache; no Rust reference points into it but
        // code and constants), or the main stack below this frame (see `dead_stack`).
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
        }
    }
}

/// Setup ran deeper than the event loop ever will: the main stack's pages below the current
/// frame, minus four pages of margin for the red zone and the calls still to come. Nothing
/// live is there (the stack grows down); the kernel hands back zeroed pages when the stack
/// grows there again.
fn dead_stack(smaps: &str) -> Option<(usize, usize)> {
    let (lo, hi) = smaps.lines().find_map(|l| {
        let (range, rest) = l.split_once(' ')?;
        if !rest.trim_end().ends_with("[stack]") {
            return None;
        }
        let (a, b) = range.split_once('-')?;
        Some((
            usize::from_str_radix(a, 16).ok()?,
            usize::from_str_radix(b, 16).ok()?,
        ))
    })?;
    let marker = 0u8;
    let sp = std::ptr::addr_of!(marker) as usize;
    if sp <= lo || sp >= hi {
        return None; // not on the main thread's stack
    }
    let end = (sp - 4 * 4096) & !4095;
    (end > lo).then_some((lo, end))
}

/// The ranges of /proc/self/smaps that are file-backed, not writable, and have no
/// anonymous pages (a RELRO segment has: its relocations must stay).
fn droppable(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, usize, bool)> = None;
    let flush = |c: Option<(usize, usize, bool)>, out: &mut Vec<(usize, usize)>| {
        if let Some((s, e, true)) = c {
            out.push((s, e));
        }
    };
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or_default();
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(s), Ok(e)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) {
                flush(cur.take(), &mut out);
                let perms = f.next().unwrap_or_default();
                let path = f.nth(3).unwrap_or_default();
                let ok = perms.starts_with('r')
                    && perms.as_bytes().get(1) == Some(&b'-')
                    && perms.ends_with('p')
                    && path.starts_with('/');
                cur = Some((s, e, ok));
                continue;
            }
        }
        if first == "Anonymous:" {
            if let Some(c) = cur.as_mut() {
                if f.next().is_some_and(|kb| kb != "0") {
                    c.2 = false;
                }
            }
        }
    }
    flush(cur, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings() {
        let smaps = "\
55d000-55e000 r--p 00000000 fe:00 1 /usr/bin/x
Rss: 8 kB
Anonymous: 0 kB
55e000-560000 r-xp 00001000 fe:00 1 /usr/bin/x
Anonymous: 0 kB
560000-561000 r--p 00003000 fe:00 1 /usr/bin/x
Anonymous: 4 kB
561000-562000 rw-p 00004000 fe:00 1 /usr/bin/x
Anonymous: 4 kB
7f00000-7f01000 r--p 00000000 00:00 0
Anonymous: 0 kB
7ffd000-7ffe000 r-xp 00000000 00:00 0 [vdso]
Anonymous: 0 kB
";
        assert_eq!(
            droppable(smaps),
            vec![(0x55d000, 0x55e000), (0x55e000, 0x560000)]
        );
    }

    #[test]
    fn releasing_keeps_the_process_working() {
        let rss_file = || -> u64 {
            let s = std::fs::read_to_string("/proc/self/status").unwrap();
            let l = s.lines().find(|l| l.starts_with("RssFile:")).unwrap();
            l.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let before = rss_file();
        release_setup_pages();
        let after = rss_file();
        // Code, constants and the heap still work.
        let v: Vec<String> = (0..100).map(|i| format!("{i}")).collect();
        assert_eq!(v[42], "42");
        assert!(after < before, "file-backed RSS {before} kB -> {after} kB");
    }
}
