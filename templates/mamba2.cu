// ---- mamba2.cu: towers.1, the Mamba2 layer -------------------------------------------------
// t = RMSNorm(u; norm1)
// phase 0: xs = silu(conv(input_proj t)), z = z_proj t, bv = silu(conv(b_proj t)),
//          cv = silu(conv(c_proj t)), dt = softplus(dt_proj t)        2E + 2S + NM rows
// phase 1: per (entry, head n, row h): ssm[n,h,:] update, y = cv . ssm + d x;
//          yz = y * silu(z)                                 one warp per ROWS rows
// phase 2: u += out_proj(RMSNorm(yz; norm.weight, 1e-5))               H rows
struct Mamba2 {
    using Lk = L_mamba2;
    static constexpr int TOWER = 1;
    static constexpr int PHASES = 3;
    static constexpr int ROWS = 8;                          // state rows per warp task, loads in flight
    static constexpr int TASKS = (MB_E + ROWS - 1) / ROWS; // per entry

    __device__ static int units(int phase, int nb)
    {
        switch (phase) {
        case 0: return 2 * MB_E + 2 * MB_S + MB_NM;
        case 1: return nb * TASKS;
        }
        return H;
    }

    __device__ static long cost(int phase, int nb)
    {
        switch (phase) {
        case 0: return row_cost(1, H, nb);
        case 1: return state_cost(2L * ROWS * MB_S * 4);
        }
        return row_cost(1, MB_E, nb);
    }

    // rows of one conv-fed projection: out = silu(conv(W t))
    __device__ static void conv_rows(const Params &p, const In (&in)[1], int l, long w, long cw,
                                     long cb, long state, Buf out, int a, int e)
    {
        Mat m[1] = {mat(wb<Lk>(l, w))};
        proj_rows<1, 1, true>(p, in, m, H, 0, a, e, [&](int b, int o, const float (&v)[1]) {
            const float *cwo = wvec(p, wb<Lk>(l, cw)) + o * ld4(MB_K);
            float *s = st<Lk>(p, b, l, state) + o * (MB_K - 1);
            sc(p, out, b)[o] = siluf(conv_step<MB_K>(cwo, wvec(p, wb<Lk>(l, cb))[o], s, v[0]));
        });
    }

    __device__ static void run(const Params &p, int phase, int l, int lo, int hi)
    {
        int a, e;
        switch (phase) {
        case 0: {
            In in[1] = {in_norm(in_act(p, Lk::sc_u), NORM_RMS, H, EPS_BLOCK,
                                wvec(p, wb<Lk>(l, Lk::b_norm1_weight)), nullptr)};
            int base = 0;
            if (part(lo, hi, base, MB_E, a, e))
                conv_rows(p, in, l, Lk::b_layer_input_proj_weight, Lk::b_layer_input_conv_conv_weight,
                          Lk::b_layer_input_conv_conv_bias, Lk::st_x_conv, Lk::sc_xs, a, e);
            base += MB_E;
            if (part(lo, hi, base, MB_E, a, e)) {
                Mat m[1] = {mat(wb<Lk>(l, Lk::b_layer_z_proj_weight))};
                proj_rows<1, 1, true>(p, in, m, H, 0, a, e, [&](int b, int o, const float (&v)[1]) {
                    sc(p, Lk::sc_z, b)[o] = v[0];
                });
            }
            base += MB_E;
            if (part(lo, hi, base, MB_S, a, e))
                conv_rows(p, in, l, Lk::b_layer_b_proj_weight, Lk::b_layer_b_conv_conv_weight,
                          Lk::b_layer_b_conv_conv_bias, Lk::st_b_conv, Lk::sc_bv, a, e);
            base += MB_S;
            if (part(lo, hi, base, MB_S, a, e))
                conv_rows(p, in, l, Lk::b_layer_c_proj_weight, Lk::b_layer_c_conv_conv_weight,
                          Lk::b_layer_c_conv_conv_bias, Lk::st_c_conv, Lk::sc_cv, a, e);
            base += MB_S;
            if (part(lo, hi, base, MB_NM, a, e)) {
                Mat m[1] = {mat(wb<Lk>(l, Lk::b_layer_dt_proj_weight), wb<Lk>(l, Lk::b_layer_dt_proj_bias))};
                proj_rows<1, 1, true>(p, in, m, H, 0, a, e, [&](int b, int o, const float (&v)[1]) {
                    sc(p, Lk::sc_dt, b)[o] = softplusf(v[0]);
                });
            }
            break;
        }
        case 1: { // one warp per (entry, ROWS inner rows r = n * MB_HD + h): S state columns each
            const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
            for (int t = lo + warp; t < hi; t += WARPS) {
                const int b = t / TASKS, r0 = t % TASKS * ROWS;
                const float *bv = sc(p, Lk::sc_bv, b), *cv = sc(p, Lk::sc_cv, b);
                float dt[ROWS], decay[ROWS], x[ROWS], y[ROWS];
#pragma unroll
                for (int u = 0; u < ROWS; u++) {
                    const int r = min(r0 + u, MB_E - 1), n = r / MB_HD;
                    dt[u] = ld_act(sc(p, Lk::sc_dt, b) + n);
                    decay[u] = expf(wvec(p, wb<Lk>(l, Lk::b_layer_a))[n] * dt[u]);
                    x[u] = ld_act(sc(p, Lk::sc_xs, b) + r);
                    y[u] = 0.0f;
                }
                float *ssm = st<Lk>(p, b, l, Lk::st_ssm) + (long)r0 * MB_S;
                for (int s = lane * 4; s < MB_S; s += 128) {
                    const float4 b4 = ld_act4(bv + s), c4 = ld_act4(cv + s);
                    float4 h[ROWS];
#pragma unroll
                    for (int u = 0; u < ROWS; u++)
                        if (r0 + u < MB_E) h[u] = *(float4 *)(ssm + (long)u * MB_S + s);
#pragma unroll
                    for (int u = 0; u < ROWS; u++) {
                        if (r0 + u >= MB_E) continue;
                        h[u].x = decay[u] * h[u].x + dt[u] * b4.x * x[u];
                        h[u].y = decay[u] * h[u].y + dt[u] * b4.y * x[u];
                        h[u].z = decay[u] * h[u].z + dt[u] * b4.z * x[u];
                        h[u].w = decay[u] * h[u].w + dt[u] * b4.w * x[u];
                        *(float4 *)(ssm + (long)u * MB_S + s) = h[u];
                        y[u] += c4.x * h[u].x + c4.y * h[u].y + c4.z * h[u].z + c4.w * h[u].w;
                    }
                }
#pragma unroll
                for (int u = 0; u < ROWS; u++) {
                    const int r = r0 + u, n = min(r, MB_E - 1) / MB_HD;
                    const float yr = warp_sum(y[u]) + wvec(p, wb<Lk>(l, Lk::b_layer_d))[n] * x[u];
                    if (lane == 0 && r < MB_E) sc(p, Lk::sc_yz, b)[r] = yr * siluf(ld_act(sc(p, Lk::sc_z, b) + r));
                }
            }
            break;
        }
        case 2: {
            In in[1] = {in_norm(in_act(p, Lk::sc_yz), NORM_RMS, MB_E, 1e-5f,
                                wvec(p, wb<Lk>(l, Lk::b_layer_norm_weight)), nullptr)};
            Mat m[1] = {mat(wb<Lk>(l, Lk::b_layer_out_proj_weight))};
            proj_rows<1, 1, true>(p, in, m, MB_E, 0, lo, hi, [&](int b, int o, const float (&v)[1]) {
                sc(p, Lk::sc_u, b)[o] += v[0];
            });
            break;
        }
        }
    }
};
