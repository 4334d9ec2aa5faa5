//! (to be written: see DESIGN.md)
