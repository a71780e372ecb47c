//! Tests of the streaming reductions against hand computations and across batch splits.

use super::*;

fn batch<'a>(
    x: &'a [f32],
    y: &'a [f32],
    lat: (&'a [i64], &'a [i32]),
    feat: (&'a [i64], &'a [i32], &'a [f32]),
) -> Batch<'a> {
    Batch {
        hidden: x,
        reconstruction: y,
        latents: CsrRef {
            indptr: lat.0,
            indices: lat.1,
            values: None,
        },
        features: CsrRef {
            indptr: feat.0,
            indices: feat.1,
            values: Some(feat.2),
        },
    }
}

#[test]
fn counts_match_hand_computation() {
    // 2 latents matched to features 1 and 0, latent 0 also scored against feature 0; 3 rows,
    // D = 1.
    let mut acc = Accumulator::new(1, 2, 2, &[0, 1, 0], &[1, 0, 0], &[0, 1, 2], None, 8).unwrap();
    let x = [1.0, 2.0, 4.0];
    let y = [1.0, 1.0, 4.0];
    // latents: row0 {0}, row1 {0,1}, row2 {}
    let lat = ([0i64, 1, 3, 3], [0i32, 0, 1]);
    // features: row0 {1}, row1 {0 (value 0 -> inactive)}, row2 {0, 1}
    let feat = ([0i64, 1, 2, 4], [1i32, 0, 0, 1], [0.5f32, 0.0, 1.0, 2.0]);
    acc.add(&batch(
        &x,
        &y,
        (&lat.0, &lat.1),
        (&feat.0, &feat.1, &feat.2),
    ))
    .unwrap();
    let s = acc.summary();
    assert_eq!(s.fires, vec![2, 1]);
    assert_eq!(s.feature_fires, vec![2, 1, 1]);
    assert_eq!(s.true_positives, vec![1, 0, 0]);
    // unions: feature 0 {latents 1, 0} active in row2 only (nothing fires); feature 1 {latent 0}
    assert_eq!(s.union_hits, vec![0, 1]);
    assert_eq!(s.true_l0, 3.0 / 3.0);
    assert_eq!(s.sae_l0, 1.0);
    assert_eq!(s.dead_latents, 0);
    // pooled: mean 7/3, var = 21/3 - 49/9 = 14/9, mse = 1/3 -> 1 - 3/14
    assert!((s.explained_variance - (1.0 - 3.0 / 14.0)).abs() < 1e-12);
    assert!((s.shrinkage - (1.0 + 0.5 + 1.0) / 3.0).abs() < 1e-12);
}

#[test]
fn batch_split_is_bit_identical() {
    let (b, d, n_lat, n_feat) = (37usize, 5usize, 4usize, 6usize);
    let x: Vec<f32> = (0..b * d)
        .map(|i| ((i * 7919) % 101) as f32 / 13.0 - 3.0)
        .collect();
    let y: Vec<f32> = x
        .iter()
        .enumerate()
        .map(|(i, v)| v * 0.9 + (i % 3) as f32 * 0.1)
        .collect();
    let lat_ptr: Vec<i64> = (0..=b as i64).map(|r| r * 2).collect();
    let lat_idx: Vec<i32> = (0..b)
        .flat_map(|r| [(r % 2) as i32, 2 + (r % 2) as i32])
        .collect();
    let feat_ptr: Vec<i64> = (0..=b as i64).collect();
    let feat_idx: Vec<i32> = (0..b).map(|r| (r % n_feat) as i32).collect();
    let feat_val: Vec<f32> = (0..b).map(|r| r as f32).collect();
    let run = |splits: &[usize]| {
        let mut acc = Accumulator::new(
            d,
            n_feat,
            4,
            &[0, 1, 2, 3],
            &[0, 1, 2, 3],
            &[1, 2],
            None,
            16,
        )
        .unwrap();
        for w in splits.windows(2) {
            let (lo, hi) = (w[0], w[1]);
            let lp: Vec<i64> = lat_ptr[lo..=hi].iter().map(|p| p - lat_ptr[lo]).collect();
            let fp: Vec<i64> = feat_ptr[lo..=hi].iter().map(|p| p - feat_ptr[lo]).collect();
            let li = &lat_idx[lat_ptr[lo] as usize..lat_ptr[hi] as usize];
            let (fa, fb) = (feat_ptr[lo] as usize, feat_ptr[hi] as usize);
            acc.add(&batch(
                &x[lo * d..hi * d],
                &y[lo * d..hi * d],
                (&lp, li),
                (&fp, &feat_idx[fa..fb], &feat_val[fa..fb]),
            ))
            .unwrap();
        }
        acc.summary()
    };
    let whole = run(&[0, b]);
    let split = run(&[0, 3, 15, 16, 30, b]);
    assert_eq!(n_lat, whole.fires.len());
    let (a, c) = (&whole, &split);
    assert_eq!(
        a.explained_variance.to_bits(),
        c.explained_variance.to_bits()
    );
    assert_eq!(
        a.explained_variance_per_sample.to_bits(),
        c.explained_variance_per_sample.to_bits()
    );
    assert_eq!(
        a.explained_variance_per_dimension.to_bits(),
        c.explained_variance_per_dimension.to_bits()
    );
    assert_eq!(a.shrinkage.to_bits(), c.shrinkage.to_bits());
    assert_eq!(a.true_positives, c.true_positives);
    assert_eq!(a.feature_fires, c.feature_fires);
    assert_eq!(a.union_hits, c.union_hits);
}

#[test]
fn rejects_bad_csr() {
    let mut acc = Accumulator::new(1, 2, 1, &[0], &[1], &[], None, 4).unwrap();
    let x = [1.0f32];
    let e = acc
        .add(&batch(&x, &x, (&[0, 1], &[3]), (&[0, 0], &[], &[])))
        .unwrap_err();
    assert!(e.to_string().starts_with("latents:"), "{e}");
    let e = acc
        .add(&batch(
            &x,
            &x,
            (&[0, 0], &[]),
            (&[0, 2], &[1, 1], &[1.0, 1.0]),
        ))
        .unwrap_err();
    assert!(e.to_string().starts_with("features:"), "{e}");
    assert!(Accumulator::new(1, 2, 1, &[0], &[2], &[], None, 4).is_err());
    assert!(Accumulator::new(1, 2, 1, &[1], &[0], &[], None, 4).is_err());
    assert!(Accumulator::new(1, 2, 1, &[0, 0], &[0], &[], None, 4).is_err());
    assert!(Accumulator::new(1, 2, 1, &[0], &[0], &[1], None, 4).is_err());
    assert_eq!(acc.summary().rows, 0);
}
