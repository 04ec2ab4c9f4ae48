// ---- hawk.cu: towers.3, the Hawk (RG-LRU) layer ------------------------------------------
// t = RMSNorm(u; norm1)
// phase 0: gate = gelu(gate_proj(t)); xc = CausalConv(recurrent_proj(t)), stacked  2H rows
// phase 1: i, r = sigmoid(BlockLinear input/recurrence gates of xc); h update;
//          y = gate * h                                                       H rows
// phase 2: u += out_proj(y)                                                   H rows
struct Hawk {
    using Lk = L_hawk;
    static constexpr int TOWER = 3;
    static constexpr int PHASES = 3;

    __device__ static int units(int phase, int)
    {
        return phase == 0 ? 2 * H : H;
    }

    __device__ static long cost(int phase, int nb)
    {
        // Measured against the other towers' phases of the same stage (per-tower trace,
        // notes/gpu.md runs 60-63): the recurrent branch's conv (its state per entry) in phase 0,
        // the RG-LRU rows 5/4 of their weights' cost in phase 1.
        switch (phase) {
        case 0: return row_cost(1, H, nb, 1500);
        case 1: return row_cost(2, HK_BS, nb) * 5 / 4;
        }
        return row_cost(1, H, nb);
    }

    // Every phase is a projection (the RG-LRU in phase 1's epilogue).
    __device__ static bool opens_with_projection(int) { return true; }

    __device__ static void run(const Params &p, int phase, int l, int lo, int hi)
    {
        switch (phase) {
        case 0: {
            In in = in_rms(in_act(p, Lk::sc_u), EPS_BLOCK, wvec(p, wb<Lk>(l, Lk::b_norm1_weight)));
            const Mat m[2] = {mat(wb<Lk>(l, Lk::b_layer_gate_proj_weight), -1, H),
                              mat(wb<Lk>(l, Lk::b_layer_recurrent_proj_weight), -1, H)
                                  .with_state(st_off<Lk>(l, Lk::st_conv), HK_K - 1)};
            proj_rows<1, true, H>(p, in, m, 0, lo, hi, [&](int b, int o, const float (&v)[1]) {
                if (stack_index(m, o) == 0) {
                    sc(p, Lk::sc_gate, b)[o] = geluf(v[0]);
                    return;
                }
                sc(p, Lk::sc_xc, b)[o] = conv_step<HK_K>(wvec(p, wb<Lk>(l, Lk::b_layer_conv_conv_weight)),
                                                         wvec(p, wb<Lk>(l, Lk::b_layer_conv_conv_bias)),
                                                         st<Lk>(p, b, l, Lk::st_conv), o, v[0]);
            });
            break;
        }
        case 1: {
            In in = in_act(p, Lk::sc_xc);
            Mat m[2] = {mat(wb<Lk>(l, Lk::b_layer_rglru_input_gate_weight)).with_state(st_off<Lk>(l, Lk::st_h), 1),
                        mat(wb<Lk>(l, Lk::b_layer_rglru_recurrence_gate_weight))};
            proj_rows<2, false, HK_BS>(p, in, m, HK_BS, lo, hi, [&](int b, int o, const float (&v)[2]) {
                const float i = sigmoidf_(v[0]), r = sigmoidf_(v[1]);
                const float at = powf(wvec(p, wb<Lk>(l, Lk::b_layer_rglru_a))[o], HK_C * r);
                float *h = st<Lk>(p, b, l, Lk::st_h) + o;
                const float x = ld_act(sc(p, Lk::sc_xc, b) + o);
                const float hn = *h * at + sqrtf(1.0f - at * at) * (i * x);
                *h = hn;
                sc(p, Lk::sc_y, b)[o] = ld_act(sc(p, Lk::sc_gate, b) + o) * hn;
            });
            break;
        }
        case 2: {
            In in = in_act(p, Lk::sc_y);
            Mat m[1] = {mat(wb<Lk>(l, Lk::b_layer_out_proj_weight))};
            proj_rows<1, false, H>(p, in, m, 0, lo, hi, [&](int b, int o, const float (&v)[1]) {
                sc(p, Lk::sc_u, b)[o] += v[0];
            });
            break;
        }
        }
    }
};
