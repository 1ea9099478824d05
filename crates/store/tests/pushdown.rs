//! Query pushdown property test: on generated archives, the SQL that `Store::search` runs
//! gives exactly what the Rust matcher (`Query::matches`, the definition of DICOM
//! matching here) selects from every record of the level, in the same order, for limit
//! and offset too. Values are drawn from small pools so that queries hit: names in three
//! cases and with ideographic groups, IDs with LIKE's own wildcard characters, absent
//! attributes, several studies per patient.

use bytes::Bytes;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use lumen_dicom::attrs::Level;
use lumen_dicom::query::Query;
use lumen_store::{Origin, Scope, Store, StoreConfig, WorklistFilter};

mod support;

/// SplitMix64: a small deterministic generator, so that a failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const PATIENT_IDS: &[&str] = &["P1", "P2", "p1", "PX-10", "P_1", "P%2", ""];
const NAMES: &[&str] = &[
    "Wang^Fang",
    "WANG^FANG",
    "wang^fang",
    "Wang^Fang=王^芳",
    "Li^Na=李^娜",
    "Müller^Jörg",
    "MÜLLER^JÖRG",
    "",
];
const DATES: &[&str] = &["20240101", "20240315", "20231231", "20250601", ""];
const TIMES: &[&str] = &["080000", "101530", "235959", ""];
const ACCESSIONS: &[&str] = &["A1", "A2", "a1", "A!1", ""];
const DESCRIPTIONS: &[&str] = &["Chest CT", "chest ct", "Thorax", ""];
const REFERRERS: &[&str] = &["Zhang^Wei", "Chen", ""];
const MODALITIES: &[(&str, &str)] = &[
    ("CT", "1.2.840.10008.5.1.4.1.1.2"),
    ("MR", "1.2.840.10008.5.1.4.1.1.4"),
    ("SR", "1.2.840.10008.5.1.4.1.1.88.22"),
    ("SEG", "1.2.840.10008.5.1.4.1.1.66.4"),
];

fn put(ds: &mut InMemDicomObject, tag: dicom_core::Tag, vr: VR, value: &str) {
    if !value.is_empty() {
        ds.put(DataElement::new(tag, vr, PrimitiveValue::from(value)));
    }
}

/// Generates and ingests an archive of `studies` studies.
async fn archive(store: &Store, rng: &mut Rng, seed: u64, studies: usize) {
    archive_with(store, rng, seed, studies, false).await
}

/// [`archive`]; with `distinct`, each study has its own patient, name, accession and date
/// (selective conditions, as in a real archive).
async fn archive_with(store: &Store, rng: &mut Rng, seed: u64, studies: usize, distinct: bool) {
    let mut n = 0;
    for s in 0..studies {
        let study_uid = format!("1.2.826.0.1.3680043.10.1043.{seed}.{s}");
        let (mut pid, mut name, mut date, time, mut acc, descr, referrer) = (
            rng.pick(PATIENT_IDS).to_string(),
            rng.pick(NAMES).to_string(),
            rng.pick(DATES).to_string(),
            rng.pick(TIMES),
            rng.pick(ACCESSIONS).to_string(),
            rng.pick(DESCRIPTIONS),
            rng.pick(REFERRERS),
        );
        if distinct {
            pid = format!("PID{s}");
            name = format!("Name{s}^Pat");
            acc = format!("ACC{s}");
            date = format!(
                "{}{:02}{:02}",
                2000 + s / 336,
                1 + (s / 28) % 12,
                1 + s % 28
            );
        }
        let (pid, name, date, acc) = (pid.as_str(), name.as_str(), date.as_str(), acc.as_str());
        for se in 0..1 + rng.below(2) {
            let series_uid = format!("{study_uid}.{se}");
            let (modality, class) = MODALITIES[rng.below(MODALITIES.len())];
            for i in 0..1 + rng.below(3) {
                n += 1;
                let sop_uid = format!("{series_uid}.{i}");
                let mut ds = InMemDicomObject::new_empty();
                put(&mut ds, tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192");
                put(&mut ds, tags::SOP_CLASS_UID, VR::UI, class);
                put(&mut ds, tags::SOP_INSTANCE_UID, VR::UI, &sop_uid);
                put(&mut ds, tags::STUDY_INSTANCE_UID, VR::UI, &study_uid);
                put(&mut ds, tags::SERIES_INSTANCE_UID, VR::UI, &series_uid);
                put(&mut ds, tags::PATIENT_ID, VR::LO, pid);
                put(&mut ds, tags::PATIENT_NAME, VR::PN, name);
                put(&mut ds, tags::STUDY_DATE, VR::DA, date);
                put(&mut ds, tags::STUDY_TIME, VR::TM, time);
                put(&mut ds, tags::ACCESSION_NUMBER, VR::SH, acc);
                put(&mut ds, tags::STUDY_DESCRIPTION, VR::LO, descr);
                put(&mut ds, tags::REFERRING_PHYSICIAN_NAME, VR::PN, referrer);
                put(&mut ds, tags::MODALITY, VR::CS, modality);
                put(&mut ds, tags::SERIES_NUMBER, VR::IS, &(se + 1).to_string());
                put(&mut ds, tags::INSTANCE_NUMBER, VR::IS, &(i + 1).to_string());
                let file = ds
                    .with_meta(
                        FileMetaTableBuilder::new()
                            .media_storage_sop_class_uid(class)
                            .media_storage_sop_instance_uid(&sop_uid)
                            .transfer_syntax("1.2.840.10008.1.2.1"),
                    )
                    .expect("file meta");
                let mut bytes = Vec::new();
                file.write_all(&mut bytes).expect("encode");
                store
                    .ingest(Bytes::from(bytes), Origin::Import)
                    .await
                    .expect("ingest");
            }
        }
    }
    assert!(n > studies);
}

/// A random query: one to three keys from pools that mix pushed-down and residual
/// conditions, and a random page.
fn query(rng: &mut Rng, level: Level) -> Vec<(String, String)> {
    let mut pool: Vec<(&str, &[&str])> = vec![
        (
            "PatientID",
            &["P1", "p1", "P?", "P_1", "P%2", "P*", "**", "PX-1?", "*1*"],
        ),
        (
            "PatientName",
            &[
                "wang^fang",
                "WANG*",
                "*fang",
                "w?ng^f*",
                "王*",
                "王^芳",
                "李^娜",
                "*",
                "**",
                "müller*",
                "MÜ*",
                "li^n?",
                "Zhang*",
            ],
        ),
    ];
    if level != Level::Patient {
        pool.extend([
            (
                "StudyDate",
                &[
                    "20240101",
                    "20240101-20240315",
                    "-20240101",
                    "20240316-",
                    "20231231-20250601",
                ][..],
            ),
            (
                "AccessionNumber",
                &["A1", "a1", "A*", "A!1", "*1", "A?"][..],
            ),
            (
                "StudyDescription",
                &["Chest CT", "chest*", "*CT", "Thorax"][..],
            ),
            ("ReferringPhysicianName", &["zhang^wei", "Chen*", "*"][..]),
            ("ModalitiesInStudy", &["CT", "SR", "SEG", "C*"][..]),
            ("StudyTime", &["080000-120000", "2359"][..]),
        ]);
    }
    if matches!(level, Level::Series | Level::Instance) {
        pool.extend([
            ("Modality", &["CT", "SR", "S*", "?R"][..]),
            ("SeriesNumber", &["1", "2"][..]),
        ]);
    }
    if level == Level::Instance {
        pool.extend([
            (
                "SOPClassUID",
                &[
                    "1.2.840.10008.5.1.4.1.1.2",
                    "1.2.840.10008.5.1.4.1.1.2,1.2.840.10008.5.1.4.1.1.4",
                ][..],
            ),
            ("InstanceNumber", &["1", "3"][..]),
        ]);
    }
    let mut params = Vec::new();
    for _ in 0..1 + rng.below(3) {
        let (name, values) = pool[rng.below(pool.len())];
        params.push((name.to_string(), rng.pick(values).to_string()));
    }
    if rng.below(2) == 0 {
        params.push(("limit".into(), rng.below(6).to_string()));
    }
    if rng.below(3) == 0 {
        params.push(("offset".into(), rng.below(5).to_string()));
    }
    params
}

#[tokio::test]
async fn sql_pushdown_equals_the_matcher() {
    for backend in support::backends() {
        pushdown_equals_the_matcher_on(&backend).await;
    }
}

async fn pushdown_equals_the_matcher_on(backend: &support::Backend) {
    let name = backend.name();
    let mut checked = 0;
    let mut nonempty = 0;
    for seed in [1u64, 2, 3] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let store = Store::open(backend.config(tmp.path())).await.expect("open");
        let mut rng = Rng(seed);
        archive(&store, &mut rng, seed, 40).await;
        // The worklist's totals: unfiltered (a counter kept by triggers) and by modality
        // (counted in SQL) agree with the matcher's studies.
        let studies = store
            .search(&Query::new(Level::Study), &Scope::default())
            .await
            .expect("studies");
        let wl = |modality: Option<&str>| WorklistFilter {
            modality: modality.map(str::to_string),
            limit: 5,
            ..WorklistFilter::default()
        };
        let all = store.worklist(&wl(None)).await.expect("worklist");
        assert_eq!(all.total as usize, studies.len());
        assert_eq!(all.items.len(), 5);
        let ct = Query::from_qido(
            Level::Study,
            &[("ModalitiesInStudy".to_string(), "CT".to_string())],
        )
        .expect("parses");
        let with_ct = studies.iter().filter(|r| ct.matches(r)).count();
        let wl_ct = store.worklist(&wl(Some("ct"))).await.expect("worklist");
        assert_eq!(wl_ct.total as usize, with_ct);
        for level in [Level::Patient, Level::Study, Level::Series, Level::Instance] {
            // The oracle's records: every record of the level, in the archive's order.
            let mut all = Query::new(level);
            all.include = lumen_dicom::query::Include::All;
            let records = store.search(&all, &Scope::default()).await.expect("all");
            for _ in 0..150 {
                let params = query(&mut rng, level);
                let q = Query::from_qido(level, &params).expect("query parses");
                let expected: Vec<_> = records
                    .iter()
                    .filter(|r| q.matches(r))
                    .skip(q.offset)
                    .take(q.limit.unwrap_or(usize::MAX))
                    .map(|r| q.response(r))
                    .collect();
                let got = store.search(&q, &Scope::default()).await.expect("search");
                assert_eq!(
                    got, expected,
                    "{name}: seed {seed}, level {level:?}, query {params:?}"
                );
                checked += 1;
                nonempty += usize::from(!expected.is_empty());
            }
        }
    }
    // The pools are meant to hit: most queries find something.
    assert!(
        nonempty * 3 > checked,
        "{nonempty} of {checked} queries matched"
    );
}

#[tokio::test]
async fn person_names_keep_their_groups_and_match_any_case() {
    for backend in support::backends() {
        person_names_on(&backend).await;
    }
}

async fn person_names_on(backend: &support::Backend) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = Store::open(backend.config(tmp.path())).await.expect("open");
    let mut rng = Rng(9);
    archive(&store, &mut rng, 9, 30).await;
    let all = store
        .search(&Query::new(Level::Study), &Scope::default())
        .await
        .expect("all");
    let ideographic = all
        .iter()
        .filter(|r| {
            r.get("00100010")
                .is_some_and(|v| v.to_string().contains("Ideographic"))
        })
        .count();
    assert!(ideographic > 0, "the generator writes ideographic names");
    let q = |p: &str| {
        Query::from_qido(Level::Study, &[("PatientName".to_string(), p.to_string())])
            .expect("parses")
    };
    let upper = store
        .search(&q("WANG^FANG"), &Scope::default())
        .await
        .expect("q");
    let lower = store
        .search(&q("wang^fang"), &Scope::default())
        .await
        .expect("q");
    assert_eq!(upper.len(), lower.len());
    assert!(!upper.is_empty());
    let hanzi = store.search(&q("王*"), &Scope::default()).await.expect("q");
    assert!(!hanzi.is_empty() && hanzi.len() < upper.len());
}

#[tokio::test]
async fn studies_indexed_before_the_query_columns_are_filled_at_open() {
    use sqlx::{ConnectOptions, Connection};
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rng = Rng(5);
    {
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("open");
        archive(&store, &mut rng, 5, 10).await;
    }
    let q = Query::from_qido(
        Level::Study,
        &[("PatientName".to_string(), "*A*".to_string())],
    )
    .expect("parses");
    let expected = {
        let store = Store::open(StoreConfig::new(tmp.path()))
            .await
            .expect("open");
        store.search(&q, &Scope::default()).await.expect("search")
    };
    assert!(!expected.is_empty());
    // As an archive of migration 0005 looked: no query columns, the marker set.
    let mut db = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(tmp.path().join("index.sqlite"))
        .connect()
        .await
        .expect("raw");
    sqlx::query(
        "UPDATE studies SET pn_alphabetic = NULL, pn_ideographic = NULL, pn_phonetic = NULL,
           accession = NULL, study_time = '', description = NULL",
    )
    .execute(&mut db)
    .await
    .expect("clear");
    sqlx::query("INSERT OR IGNORE INTO index_backfill (name) VALUES ('study_columns')")
        .execute(&mut db)
        .await
        .expect("marker");
    db.close().await.expect("close");
    let store = Store::open(StoreConfig::new(tmp.path()))
        .await
        .expect("open");
    let got = store.search(&q, &Scope::default()).await.expect("search");
    assert_eq!(got, expected);
}

/// On PostgreSQL, the QIDO, C-FIND and worklist conditions that the pushdown indexes are
/// answered from indexes: after ANALYZE over a few thousand instances, the plan of each
/// reads no table of the hierarchy sequentially.
#[tokio::test]
async fn postgres_plans_use_the_indexes() {
    let Some(server) = support::pg::start() else {
        return;
    };
    let backend = support::Backend::Postgres(server);
    let tmp = tempfile::tempdir().expect("tempdir");
    let cfg = backend.config(tmp.path());
    let store = Store::open(cfg.clone()).await.expect("open");
    let mut rng = Rng(7);
    archive_with(&store, &mut rng, 7, 1200, true).await;
    let url = cfg.database.expect("a PostgreSQL URL");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    sqlx::query("ANALYZE")
        .execute(&pool)
        .await
        .expect("analyze");
    let cases: &[(Level, &[(&str, &str)])] = &[
        (Level::Study, &[("PatientID", "PID17")]),
        (Level::Study, &[("PatientName", "name12*")]),
        (Level::Study, &[("PatientName", "NAME17^PAT")]),
        (Level::Study, &[("AccessionNumber", "ACC100")]),
        (Level::Study, &[("StudyDate", "20010101-20010102")]),
        (Level::Series, &[("PatientID", "PID17")]),
        (
            Level::Study,
            &[("StudyInstanceUID", "1.2.826.0.1.3680043.10.1043.7.5")],
        ),
        (Level::Study, &[("limit", "20")]),
        (
            Level::Series,
            &[("StudyInstanceUID", "1.2.826.0.1.3680043.10.1043.7.5")],
        ),
        (
            Level::Series,
            &[("SeriesInstanceUID", "1.2.826.0.1.3680043.10.1043.7.5.0")],
        ),
        (
            Level::Instance,
            &[("StudyInstanceUID", "1.2.826.0.1.3680043.10.1043.7.5")],
        ),
        (
            Level::Instance,
            &[("SeriesInstanceUID", "1.2.826.0.1.3680043.10.1043.7.5.0")],
        ),
        (
            Level::Instance,
            &[("SOPInstanceUID", "1.2.826.0.1.3680043.10.1043.7.5.0.0")],
        ),
    ];
    for (level, params) in cases {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let q = Query::from_qido(*level, &params).expect("parses");
        let plan = store
            .explain_search(&q, &Scope::default())
            .await
            .expect("explain");
        let scans = seq_scans(&plan);
        assert!(
            scans.is_empty(),
            "{level:?} {params:?} reads {scans:?} sequentially: {plan}"
        );
        assert!(plan.contains("Index"), "{level:?} {params:?}: {plan}");
    }
    // The check sees a scan: without its index, a patient's studies are read by one.
    sqlx::query("DROP INDEX studies_patient")
        .execute(&pool)
        .await
        .expect("drop index");
    let q = Query::from_qido(
        Level::Study,
        &[("PatientID".to_string(), "PID17".to_string())],
    )
    .expect("parses");
    let plan = store
        .explain_search(&q, &Scope::default())
        .await
        .expect("explain");
    assert_eq!(seq_scans(&plan), ["studies"], "{plan}");
}

/// The tables a PostgreSQL JSON plan reads with a sequential scan.
fn seq_scans(plan: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if m.get("Node Type").and_then(|t| t.as_str()) == Some("Seq Scan") {
                    let table = m.get("Relation Name").and_then(|t| t.as_str());
                    out.push(table.unwrap_or("?").to_string());
                }
                m.values().for_each(|v| walk(v, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let v: serde_json::Value = serde_json::from_str(plan).expect("a JSON plan");
    walk(&v, &mut out);
    out
}
