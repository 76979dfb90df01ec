//! Arithmetic work per node from its shapes: multiply-accumulates for the ops that dominate
//! inference (conv, matmul, recurrent), plain operation counts for the rest.

use super::NodeAttrs;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Work {
    pub macs: u64,
    pub other_ops: u64,
}

type Shapes = [Option<Vec<usize>>];

fn numel(s: &[usize]) -> u64 {
    s.iter().map(|&d| d as u64).product()
}

fn shape(shapes: &Shapes, i: usize) -> Option<&[usize]> {
    shapes.get(i)?.as_deref()
}

/// Work of one node; `None` when a shape it needs is unknown.
pub fn node_work(op: &str, attrs: &NodeAttrs, inputs: &Shapes, outputs: &Shapes) -> Option<Work> {
    let out = shape(outputs, 0);
    let mac = |m: u64| Some(Work { macs: m, other_ops: 0 });
    match op {
        "Conv" | "ConvInteger" => mac(numel(out?) * numel(shape(inputs, 1)?.get(1..)?)),
        "QLinearConv" => mac(numel(out?) * numel(shape(inputs, 3)?.get(1..)?)),
        "ConvTranspose" => mac(numel(shape(inputs, 0)?) * numel(shape(inputs, 1)?.get(1..)?)),
        "MatMul" | "MatMulInteger" | "QLinearMatMul" => {
            let a = shape(inputs, 0)?;
            mac(numel(out?) * *a.last()? as u64)
        }
        "Gemm" => {
            // A is [M, K] or, with transA, [K, M]: either way K = |A| / M.
            let (a, out) = (shape(inputs, 0)?, out?);
            let m = (*out.first()? as u64).max(1);
            mac(numel(out) * (numel(a) / m))
        }
        "LSTM" | "GRU" | "RNN" => {
            let x = shape(inputs, 0)?;
            let steps = (x.first()? * x.get(1)?) as u64;
            mac(steps * (numel(shape(inputs, 1)?) + numel(shape(inputs, 2)?)))
        }
        // The work of control flow is in its subgraphs, which are not counted: unknown, not 0.
        "If" | "Loop" | "Scan" => None,
        "MaxPool" | "AveragePool" => Some(Work {
            macs: 0,
            other_ops: numel(out?) * attrs.kernel.iter().product::<usize>().max(1) as u64,
        }),
        "GlobalAveragePool" | "GlobalMaxPool" | "ReduceMean" | "ReduceSum" | "ReduceMax" => {
            Some(Work { macs: 0, other_ops: numel(shape(inputs, 0)?) })
        }
        // Elementwise and data movement: one operation per output element, unknown with it.
        _ => Some(Work { macs: 0, other_ops: numel(out?) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[usize]) -> Option<Vec<usize>> {
        Some(v.to_vec())
    }

    #[test]
    fn conv_macs_are_output_elements_times_filter_volume() {
        // 3x3 conv, 3 -> 8 channels, 32x32 output: 8*32*32 outputs x 3*3*3 MACs each.
        let w = node_work(
            "Conv",
            &NodeAttrs::default(),
            &[s(&[1, 3, 32, 32]), s(&[8, 3, 3, 3])],
            &[s(&[1, 8, 32, 32])],
        );
        assert_eq!(w.unwrap().macs, 8 * 32 * 32 * 27);
    }

    #[test]
    fn depthwise_conv_counts_one_input_channel_per_filter() {
        let w = node_work(
            "Conv",
            &NodeAttrs::default(),
            &[s(&[1, 16, 8, 8]), s(&[16, 1, 3, 3])],
            &[s(&[1, 16, 8, 8])],
        );
        assert_eq!(w.unwrap().macs, 16 * 64 * 9);
    }

    #[test]
    fn gemm_and_matmul_are_m_n_k() {
        let g = node_work("Gemm", &NodeAttrs::default(), &[s(&[1, 64]), s(&[10, 64])], &[s(&[1, 10])]);
        assert_eq!(g.unwrap().macs, 640);
        let m = node_work("MatMul", &NodeAttrs::default(), &[s(&[2, 5, 7]), s(&[7, 3])], &[s(&[2, 5, 3])]);
        assert_eq!(m.unwrap().macs, 2 * 5 * 3 * 7);
    }

    #[test]
    fn unknown_shapes_give_no_figure_rather_than_zero() {
        assert_eq!(node_work("Conv", &NodeAttrs::default(), &[None, None], &[None]), None);
    }
}
