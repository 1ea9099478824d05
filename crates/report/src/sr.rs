//! Comprehensive 3D SR writer following TID 1500 "Imaging Measurement Report" (placeholder).
