//! Criterion benches of the exact sparse sampler (`cargo bench --bench sampler`).
//! Workload: N = 16,384, zipfian(exponent 0.5, max 0.4, min 5e-4) — L0 ≈ 59.1.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use synthsae::copula::{Copula, FactorColumns, RowBounds};
use synthsae::firing::zipfian;
use synthsae::hazard::HazardTable;
use synthsae::independent::{IndependentSampler, PerFeature};
use synthsae::rng::{row_rng, Stream};

fn probabilities() -> Vec<f64> {
    zipfian(16384, 0.5, 0.4, 5e-4)
        .unwrap()
        .into_iter()
        .map(f64::from)
        .collect()
}

fn bench(c: &mut Criterion) {
    let p = probabilities();
    let rows = 65_536u64;
    let mut g = c.benchmark_group("independent_16k_zipf");
    g.throughput(Throughput::Elements(rows));
    g.sample_size(10);

    let table = HazardTable::new(&p, "p").unwrap();
    g.bench_function("walk_only_1_thread", |b| {
        b.iter(|| {
            let mut fires = 0u64;
            for r in 0..rows {
                table.walk(&mut row_rng(0, Stream::Firing, r), |_| fires += 1);
            }
            fires
        })
    });
    for (std, label) in [(0.0, "std0"), (0.5, "std0.5")] {
        let s =
            IndependentSampler::new(&p, PerFeature::Scalar(1.0), PerFeature::Scalar(std)).unwrap();
        for threads in [1, 2] {
            g.bench_function(format!("csr_{label}_{threads}_threads"), |b| {
                b.iter(|| s.sample(0, 0, rows, Some(threads)).unwrap())
            });
        }
    }
    g.bench_function("build_table", |b| {
        b.iter(|| HazardTable::new(&p, "p").unwrap())
    });
    g.finish();
}

/// The copula's per-row kernel at SynthSAEBench-16k size: 5,632 top-level features, rank 25.
fn copula_kernel(c: &mut Criterion) {
    let (n, r) = (5632usize, 25usize);
    let factor: Vec<f32> = (0..n * r)
        .map(|x| ((x * 7919 % 997) as f32 / 997.0 - 0.5) * 0.2)
        .collect();
    let copula = Copula::new(n, factor, &vec![0.75; n], vec![3.1; n]).unwrap();
    let columns = FactorColumns::new(&copula, (0..n as u32).collect());
    let eps: Vec<f32> = (0..r).map(|k| (k as f32 * 0.37).sin()).collect();
    let mut out = RowBounds::default();
    let mut g = c.benchmark_group("copula_16k_top_level");
    g.throughput(Throughput::Elements(1));
    g.bench_function("bounds_1_row", |b| {
        b.iter(|| columns.bounds(&eps, &mut out))
    });
    let rows = FactorColumns::ROWS_AT_ONCE;
    let batch: Vec<f32> = (0..rows)
        .flat_map(|k| eps.iter().map(move |e| e * (1.0 + k as f32 * 0.1)))
        .collect();
    g.throughput(Throughput::Elements(rows as u64));
    g.bench_function(format!("bounds_{rows}_rows"), |b| {
        b.iter(|| columns.bounds(&batch, &mut out))
    });

    g.finish();
}

criterion_group!(benches, bench, copula_kernel);
criterion_main!(benches);
