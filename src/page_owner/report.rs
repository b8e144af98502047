//! pgtool page-owner report (being written).
