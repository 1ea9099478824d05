//! Writes a generated archive of tiny CT instances for the index benchmark
//! (`bench/index.sh`): STUDIES studies of PER_STUDY instances in one series each, 8x8
//! pixels, one folder per study. Patients are `SCALE^P<n>` / `SCALE<n>` (one study each);
//! study dates spread over 2000-2024; every value is synthetic.
//!
//!     cargo run --release -p lumen-store --example tiny_archive -- OUT STUDIES PER_STUDY [FIRST]
//!
//! FIRST (default 0) numbers the first study, so that archives can be grown in steps.

use std::path::PathBuf;

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: tiny_archive OUT STUDIES PER_STUDY [FIRST]";
    let out = PathBuf::from(args.first().ok_or(usage)?);
    let studies: u64 = args.get(1).ok_or(usage)?.parse()?;
    let per_study: u64 = args.get(2).ok_or(usage)?.parse()?;
    let first: u64 = args.get(3).map(|s| s.parse()).transpose()?.unwrap_or(0);
    let pixels: Vec<u16> = (0..64u16).collect();
    for s in first..first + studies {
        let dir = out.join(format!("{s:07}"));
        std::fs::create_dir_all(&dir)?;
        let study_uid = format!("1.2.826.0.1.3680043.10.1043.1.{s}");
        let series_uid = format!("{study_uid}.1");
        // Dates spread over 25 years (day of month 1..28), times over the day.
        let date = format!(
            "{}{:02}{:02}",
            2000 + s % 25,
            1 + (s / 25) % 12,
            1 + (s / 300) % 28
        );
        let time = format!("{:02}{:02}00", (s * 7) % 24, (s * 13) % 60);
        for i in 0..per_study {
            let sop_uid = format!("{series_uid}.{i}");
            let mut ds = InMemDicomObject::new_empty();
            let mut put = |tag, vr, v: PrimitiveValue| ds.put(DataElement::new(tag, vr, v));
            put(tags::SOP_CLASS_UID, VR::UI, CT.into());
            put(tags::SOP_INSTANCE_UID, VR::UI, sop_uid.as_str().into());
            put(tags::STUDY_INSTANCE_UID, VR::UI, study_uid.as_str().into());
            put(
                tags::SERIES_INSTANCE_UID,
                VR::UI,
                series_uid.as_str().into(),
            );
            put(tags::PATIENT_NAME, VR::PN, format!("SCALE^P{s:07}").into());
            put(tags::PATIENT_ID, VR::LO, format!("SCALE{s:07}").into());
            put(tags::STUDY_DATE, VR::DA, date.as_str().into());
            put(tags::STUDY_TIME, VR::TM, time.as_str().into());
            put(tags::ACCESSION_NUMBER, VR::SH, format!("ACC{s:07}").into());
            put(tags::STUDY_ID, VR::SH, "1".into());
            put(tags::MODALITY, VR::CS, "CT".into());
            put(tags::SERIES_NUMBER, VR::IS, "1".into());
            put(tags::INSTANCE_NUMBER, VR::IS, (i + 1).to_string().into());
            put(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(1u16));
            put(
                tags::PHOTOMETRIC_INTERPRETATION,
                VR::CS,
                "MONOCHROME2".into(),
            );
            put(tags::ROWS, VR::US, PrimitiveValue::from(8u16));
            put(tags::COLUMNS, VR::US, PrimitiveValue::from(8u16));
            put(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(16u16));
            put(tags::BITS_STORED, VR::US, PrimitiveValue::from(12u16));
            put(tags::HIGH_BIT, VR::US, PrimitiveValue::from(11u16));
            put(
                tags::PIXEL_REPRESENTATION,
                VR::US,
                PrimitiveValue::from(0u16),
            );
            put(
                tags::PIXEL_DATA,
                VR::OW,
                PrimitiveValue::U16(pixels.iter().copied().collect()),
            );
            let file = ds.with_meta(
                FileMetaTableBuilder::new()
                    .media_storage_sop_class_uid(CT)
                    .media_storage_sop_instance_uid(&sop_uid)
                    .transfer_syntax("1.2.840.10008.1.2.1"),
            )?;
            file.write_to_file(dir.join(format!("{i:03}.dcm")))?;
        }
    }
    Ok(())
}
