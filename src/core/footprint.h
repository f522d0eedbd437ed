// Resident memory of the process's own code (issue 17, README "Idle
// process"). The kernel maps file pages 64 KiB at a time around each fault
// (fault-around, whatever madvise says), so code run once at start-up
// (dynamic linking, static initializers, the CLI, config parsing) leaves
// whole 64 KiB windows of the binary and of every shared library in the
// process's page tables for its whole life. These are clean page-cache
// pages, shared with every process mapping the same files: counted in RSS
// and PSS, but not private memory (Anonymous is), and dropping them from
// the page tables leaves the page cache as it is.
//
// Thread safety: any thread; the process's own code may run concurrently
// (a page it needs faults back in).
#pragma once

namespace sidecar::core {

// MADV_DONTNEED on the file-backed mappings that hold no private page
// (read-only or executable, with "Anonymous: 0 kB" in /proc/self/smaps):
// pages used only while starting leave the RSS; pages used again fault back
// in from the page cache (a minor fault, once). Mappings with private
// copies (relocated or written pages) are left alone: dropping those would
// lose their contents.
void release_startup_pages();

}  // namespace sidecar::core
