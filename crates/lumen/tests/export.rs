//! End-to-end test of `lumen export --deidentify`: the sample objects and LIDC-IDRI-0001
//! imported with `lumen import`, exported as stored and de-identified, and checked with
//! pydicom and against dicognito (an independent de-identifier) by
//! `support/deid_check.py`: no original patient name, ID, date or instance UID anywhere
//! (nested sequences and file meta included), pixel data byte for byte, one new UID per
//! original study and series, the de-identification recorded, and every value dicognito
//! removes or replaces also removed or replaced by Lumen (the justified differences are
//! listed in the script).

mod util;

use std::path::{Path, PathBuf};
use std::process::Command;

use util::*;

/// The Study Instance UIDs of every object stored in a data directory.
fn stored_studies(data: &Path) -> Vec<String> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(p).into_iter().flatten().flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&data.join("objects"), &mut files);
    let mut studies: Vec<String> = files
        .iter()
        .map(|f| {
            let bytes = std::fs::read(f).expect("object");
            let obj = lumen_dicom::part10::parse(&bytes).expect("stored object parses");
            obj.element(dicom_dictionary_std::tags::STUDY_INSTANCE_UID)
                .expect("study uid")
                .to_str()
                .expect("text")
                .trim_end_matches('\0')
                .to_string()
        })
        .collect();
    studies.sort();
    studies.dedup();
    studies
}

/// The Python interpreter with pydicom and dicognito, or `None` with a skip message
/// (a failure under `LUMEN_REQUIRE_TOOLS=1`).
fn python_with_dicognito() -> Option<PathBuf> {
    let py = python()?;
    let ok = Command::new(&py)
        .args(["-c", "import dicognito.anonymizer"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("LUMEN_REQUIRE_TOOLS").as_deref() == Ok("1") {
            panic!("dicognito is required (LUMEN_REQUIRE_TOOLS=1): scripts/deps.sh test");
        }
        eprintln!("SKIP: dicognito not installed in the venv (scripts/deps.sh test)");
        return None;
    }
    Some(py)
}

fn export(data: &Path, studies: &[String], out: &Path, flags: &[&str]) -> String {
    let mut cmd = Command::new(lumen_bin());
    cmd.arg("export")
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out);
    cmd.args(flags);
    for s in studies {
        cmd.arg("--study").arg(s);
    }
    let o = run(&mut cmd);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(
        o.status.success(),
        "lumen export {flags:?} failed:\n{stderr}"
    );
    stderr
}

fn check(py: &Path, original: &Path, deid: &Path, mode: Option<&str>) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/deid_check.py");
    let mut cmd = Command::new(py);
    cmd.arg(script).arg(original).arg(deid);
    if let Some(m) = mode {
        cmd.arg(m);
    }
    let o = run(&mut cmd);
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "deid_check.py {mode:?} found problems:\n{stderr}\n{stdout}"
    );
    serde_json::from_str(stdout.trim()).expect("summary JSON")
}

fn dcm_count(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("out dir")
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "dcm"))
        .count()
}

#[test]
fn deidentified_export_of_samples_and_lidc() {
    let Some(shared) = shared_data() else { return };
    let Some(py) = python_with_dicognito() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    // Broken sample files are rejected (exit code 1); the rest is stored.
    let o = run(Command::new(lumen_bin())
        .arg("import")
        .arg("--data")
        .arg(&data)
        .arg(shared.join("dicom-samples"))
        .arg(shared.join("lidc-idri-0001/ct")));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains(" stored"), "{text}");
    let studies = stored_studies(&data);
    let (objects, _) = object_files(&data);
    assert!(objects >= 133 + 100, "{objects} objects stored:\n{text}");
    assert!(studies.len() >= 20, "{} studies", studies.len());
    let lidc = "1.3.6.1.4.1.14519.5.2.1.6279.6001.298806137288633453246975630178";
    assert!(studies.iter().any(|s| s == lidc), "LIDC-IDRI-0001 stored");

    let original = tmp.path().join("original");
    export(&data, &studies, &original, &[]);
    assert_eq!(dcm_count(&original), objects);

    // Basic Profile.
    let deid = tmp.path().join("deid");
    let log = export(&data, &studies, &deid, &["--deidentify"]);
    assert_eq!(dcm_count(&deid), objects);
    assert!(
        log.contains(&format!("Exported {objects} of {objects} instances")),
        "{log}"
    );
    // Ultrasound and secondary capture samples are flagged, in the log and warnings.json.
    assert!(log.contains("warning: 2.25."), "{log}");
    let warnings: serde_json::Value =
        serde_json::from_slice(&std::fs::read(deid.join("warnings.json")).expect("warnings"))
            .expect("json");
    let kinds: Vec<&str> = warnings
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|w| w["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"possible_burned_in_annotation"),
        "{kinds:?}"
    );
    let summary = check(&py, &original, &deid, None);
    eprintln!("basic profile: {summary}");
    assert_eq!(summary["originals"], objects);
    assert!(
        summary["pixel_data_compared"].as_u64() >= Some(250),
        "{summary}"
    );
    assert!(summary["studies_paired"].as_u64() >= Some(20), "{summary}");
    assert!(
        summary["dicognito_replaced_values"].as_u64() >= Some(1000),
        "{summary}"
    );

    // Modified dates and cleaned descriptors.
    let deid2 = tmp.path().join("deid-dates");
    export(
        &data,
        &studies,
        &deid2,
        &["--deidentify", "--retain-dates", "--clean-descriptors"],
    );
    let summary = check(&py, &original, &deid2, Some("modified"));
    eprintln!("modified dates, clean descriptors: {summary}");
    assert!(
        summary["patients_with_shifted_dates"].as_u64() >= Some(10),
        "{summary}"
    );

    // LIDC-IDRI-0001 alone: 133 files, one new study, one new series.
    let lidc_out = tmp.path().join("lidc");
    let log = export(&data, &[lidc.to_string()], &lidc_out, &["--deidentify"]);
    assert_eq!(dcm_count(&lidc_out), 133, "{log}");
    let o = run(Command::new(&py)
        .arg("-c")
        .arg(
            "import pydicom, glob, sys\n\
         fs = [pydicom.dcmread(f) for f in glob.glob(sys.argv[1] + '/*.dcm')]\n\
         print(len({f.StudyInstanceUID for f in fs}), len({f.SeriesInstanceUID for f in fs}),\n\
               len({f.FrameOfReferenceUID for f in fs}), len({str(f.PatientID) for f in fs}))",
        )
        .arg(&lidc_out));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "1 1 1 1",
        "{o:?}"
    );
}

#[test]
fn export_refuses_unknown_study_and_bad_safelist() {
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    // An empty archive.
    std::fs::create_dir_all(&data).expect("data");
    let o = run(Command::new(lumen_bin())
        .args(["export", "--deidentify", "--study", "1.2.3"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("out")));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no such study"), "{err}");
    let o = run(Command::new(lumen_bin())
        .args(["export", "--deidentify", "--study", "1.2.3"])
        .args(["--keep-private", "0010,ACME,01"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("out")));
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("odd hexadecimal group"), "{err}");
    // Options need --deidentify.
    let o = run(Command::new(lumen_bin())
        .args(["export", "--retain-dates", "--study", "1.2.3"])
        .arg("--data")
        .arg(&data)
        .arg("--out")
        .arg(tmp.path().join("out")));
    assert!(!o.status.success());
}
