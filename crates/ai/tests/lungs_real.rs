//! Lung segmentation on real CT: RTSTRUCT lung contours (LCTSC) and LIDC-IDRI-0001 volumes.

mod common;

use lumen_ai::Volume;
use lumen_ai::lungs::{LEFT, LungConfig, RIGHT, segment_lungs};

/// The RTSTRUCT ROI `name` on the single slice of `vol`, through the library rasteriser.
fn roi_mask(
    rt: &dicom_object::DefaultDicomObject,
    vol: &Volume,
    name: &str,
) -> ndarray::Array2<bool> {
    lumen_ai::eval::rtstruct_mask(rt, vol, name)
        .unwrap()
        .index_axis(ndarray::Axis(0), 0)
        .to_owned()
}

#[test]
fn lctsc_rtstruct_lung_dice() {
    let Some(dir) = common::data_dir("dicom-samples/orthanc-tests-picks/lctsc-rth") else {
        return;
    };
    let vol = Volume::from_dicom_files(&[dir.join("CT01.dcm")]).unwrap();
    let rt = dicom_object::open_file(dir.join("RT.dcm")).unwrap();
    // CT01 lies at z = -640.2 mm, below the lung bases: the RTSTRUCT's lung contours span
    // z = -571.2 .. -337.2 mm, so the reference lung masks on this slice are empty (an abdominal
    // slice with bowel gas). The segmentation must agree: no lung, Dice 1 by convention.
    let ours = match segment_lungs(&vol, &LungConfig::default()) {
        Ok(l) => l.to_volume_grid(vol.shape()),
        Err(lumen_ai::AnalysisError::NoLungs(_)) => ndarray::Array3::zeros((1, 512, 512)),
        Err(e) => panic!("{e}"),
    };
    assert!(
        lumen_ai::eval::rtstruct_roi_names(&rt)
            .iter()
            .any(|n| n == "Lung_R")
    );
    for (name, side) in [("Lung_R", RIGHT), ("Lung_L", LEFT)] {
        let truth = roi_mask(&rt, &vol, name);
        let mine = ours.index_axis(ndarray::Axis(0), 0).mapv(|l| l == side);
        let d = lumen_ai::eval::dice(&mine, &truth).unwrap();
        eprintln!(
            "{name}: reference {} px, ours {} px, Dice {d:.4}",
            truth.iter().filter(|&&v| v).count(),
            mine.iter().filter(|&&v| v).count()
        );
        assert!(d > 0.95, "{name}: Dice {d:.4}");
    }
    // The contour rasteriser itself, checked on a slice the RTSTRUCT does cover: the reference
    // Lung_R contour at z = -451.2 mm encloses a plausible lung cross-section (50-300 cm²).
    let mut shifted = vol.clone();
    shifted.geometry.origin[2] = -451.2;
    let area_cm2 = roi_mask(&rt, &shifted, "Lung_R")
        .iter()
        .filter(|&&v| v)
        .count() as f64
        * vol.geometry.spacing[1]
        * vol.geometry.spacing[2]
        / 100.0;
    assert!(
        (50.0..300.0).contains(&area_cm2),
        "Lung_R area {area_cm2} cm²"
    );
}

#[test]
fn lidc_lung_volumes_plausible() {
    let Some(dir) = common::data_dir("lidc-idri-0001/ct") else {
        return;
    };
    let vol = Volume::from_dicom_files(&[dir]).unwrap();
    let lungs = segment_lungs(&vol, &LungConfig::default()).unwrap();
    eprintln!(
        "LIDC-0001 lungs: right {:.0} mL, left {:.0} mL, airways {:.0} mL, {:?}",
        lungs.right_volume_ml, lungs.left_volume_ml, lungs.airway_volume_ml, lungs.warnings
    );
    assert!(lungs.warnings.is_empty(), "{:?}", lungs.warnings);
    for v in [lungs.right_volume_ml, lungs.left_volume_ml] {
        assert!((1000.0..4500.0).contains(&v), "lung volume {v}");
    }
    assert!(
        lungs.right_volume_ml > lungs.left_volume_ml * 0.9,
        "right lung is usually larger"
    );
    assert!(
        (15.0..200.0).contains(&lungs.airway_volume_ml),
        "airways {}",
        lungs.airway_volume_ml
    );
    // The LUNA16 nodule centre lies in the left lung (world x > 0 is patient left).
    let v = vol.world_to_voxel([56.21, 86.34, -115.87]);
    assert_eq!(lungs.label_at(v), LEFT);
}
