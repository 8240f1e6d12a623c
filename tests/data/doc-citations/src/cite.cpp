// Resolves: docs/a.md §1.
// Broken: docs/a.md §3, docs/missing.md §1, and the outside document's facts §2.
