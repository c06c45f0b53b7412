package dir4j.engine.cuda;

/**
 * Every kernel the CUDA backend launches: the kernel file (module) that defines it, its name,
 * and its parameter list, one letter per parameter: p a device pointer, l an int64, u a uint64
 * (bit pattern), i an int32, d a double, f a float, g a {@code Geometry} struct. Launches check
 * their arguments against the letters; KernelSignatureTest checks the letters against the PTX.
 */
enum Kernel {
    UNARY_CONTIG4_F32("elementwise", "unary_contig4_f32", "pplidd"),
    UNARY_STRIDED_F32_I32("elementwise", "unary_strided_f32_i32", "ppgidd"),
    UNARY_STRIDED_F32_I64("elementwise", "unary_strided_f32_i64", "ppgidd"),
    UNARY_STRIDED_F64_I32("elementwise", "unary_strided_f64_i32", "ppgidd"),
    UNARY_STRIDED_F64_I64("elementwise", "unary_strided_f64_i64", "ppgidd"),
    BINARY_CONTIG4_F32("elementwise", "binary_contig4_f32", "pppli"),
    BINARY_REPEAT4_F32("elementwise", "binary_repeat4_f32", "pppiiiiii"),
    BINARY_STRIDED_F32_I32("elementwise", "binary_strided_f32_i32", "pppgi"),
    BINARY_STRIDED_F32_I64("elementwise", "binary_strided_f32_i64", "pppgi"),
    BINARY_STRIDED_F64_I32("elementwise", "binary_strided_f64_i32", "pppgi"),
    BINARY_STRIDED_F64_I64("elementwise", "binary_strided_f64_i64", "pppgi"),
    FILL_STRIDED_B16_I32("elementwise", "fill_strided_b16_i32", "pgu"),
    FILL_STRIDED_B16_I64("elementwise", "fill_strided_b16_i64", "pgu"),
    FILL_STRIDED_B32_I32("elementwise", "fill_strided_b32_i32", "pgu"),
    FILL_STRIDED_B32_I64("elementwise", "fill_strided_b32_i64", "pgu"),
    FILL_STRIDED_B64_I32("elementwise", "fill_strided_b64_i32", "pgu"),
    FILL_STRIDED_B64_I64("elementwise", "fill_strided_b64_i64", "pgu"),
    COPY_STRIDED_B16_I32("elementwise", "copy_strided_b16_i32", "ppg"),
    COPY_STRIDED_B16_I64("elementwise", "copy_strided_b16_i64", "ppg"),
    COPY_STRIDED_B32_I32("elementwise", "copy_strided_b32_i32", "ppg"),
    COPY_STRIDED_B32_I64("elementwise", "copy_strided_b32_i64", "ppg"),
    COPY_STRIDED_B64_I32("elementwise", "copy_strided_b64_i32", "ppg"),
    COPY_STRIDED_B64_I64("elementwise", "copy_strided_b64_i64", "ppg"),
    CAST_STRIDED("elementwise", "cast_strided", "pipig"),

    REDUCE_ROWS_F32("reduce", "reduce_rows_f32", "ppgllii"),
    REDUCE_ROWS_F64("reduce", "reduce_rows_f64", "ppgllii"),
    REDUCE_COLUMNS_F32("reduce", "reduce_columns_f32", "ppggi"),
    REDUCE_COLUMNS_F64("reduce", "reduce_columns_f64", "ppggi"),
    REDUCE_BLOCKS_F32("reduce", "reduce_blocks_f32", "ppggip"),
    REDUCE_BLOCKS_F64("reduce", "reduce_blocks_f64", "ppggip"),
    CUMSUM_LINES_F32("reduce", "cumsum_lines_f32", "ppgllli"),
    CUMSUM_LINES_F64("reduce", "cumsum_lines_f64", "ppgllli"),
    CUMSUM_BLOCK_F32("reduce", "cumsum_block_f32", "ppgllli"),
    CUMSUM_BLOCK_F64("reduce", "cumsum_block_f64", "ppgllli"),

    L2NORM_ROWS_F32("normalize", "l2norm_rows_f32", "pplldi"),
    L2NORM_ROWS_BACKWARD_F32("normalize", "l2norm_rows_backward_f32", "ppplldi"),

    GEM_FORWARD_F32("gem", "gem_forward_f32", "ppdplli"),
    GEM_BACKWARD_F32("gem", "gem_backward_f32", "ppdpppplli"),
    GEM_FORWARD_WARP_F32("gem", "gem_forward_warp_f32", "ppdplli"),
    GEM_BACKWARD_WARP_F32("gem", "gem_backward_warp_f32", "ppdpppplli"),

    AP_HIST_ACCUMULATE_F32("ap_histogram", "ap_hist_accumulate_f32", "pllpllppliddllpp"),
    AP_HIST_ACCUMULATE_PRIVATE_F32("ap_histogram", "ap_hist_accumulate_private_f32", "pllpllppliddllpp"),
    AP_HIST_FINALIZE_F32("ap_histogram", "ap_hist_finalize_f32", "pppli"),
    AP_HIST_BACKWARD_F32("ap_histogram", "ap_hist_backward_f32", "pllpllppplllpliddll"),
    AP_HIST_BACKWARD_SYM_F32("ap_histogram", "ap_hist_backward_sym_f32", "pllpllppplllplliddlli"),
    AP_LOSS_FROM_HIST_F32("ap_histogram", "ap_loss_from_hist_f32", "ppppli"),

    TOPK_ROWS_F32("topk", "topk_rows_f32", "pllipp"),

    BN_SCALE_SHIFT_F32("batchnorm", "bn_scale_shift_f32", "ppppdip"),
    BN_APPLY_F32("batchnorm", "bn_apply_f32", "ppppllii"),
    BN_NHWC_PARTIAL_F32("batchnorm", "bn_nhwc_partial_f32", "pppplilip"),
    BN_NHWC_FINALIZE_F32("batchnorm", "bn_nhwc_finalize_f32", "pilipppppddippp"),
    BN_NHWC_APPLY_F32("batchnorm", "bn_nhwc_apply_f32", "ppppliii"),
    BN_NHWC_BACKWARD_FINALIZE_F32("batchnorm", "bn_nhwc_backward_finalize_f32", "pilipppippp"),
    BN_NHWC_BACKWARD_APPLY_F32("batchnorm", "bn_nhwc_backward_apply_f32", "ppppppliii"),

    MAXPOOL2D_FORWARD_F32("pool", "maxpool2d_forward_f32", "pppliiiiiiiiii"),
    MAXPOOL2D_BACKWARD_F32("pool", "maxpool2d_backward_f32", "pppliiiiiiiiii"),
    MAXPOOL2D_NHWC_F32("pool", "maxpool2d_nhwc_f32", "pppliiiiiiiiiiii"),
    MAXPOOL2D_NHWC_BACKWARD_F32("pool", "maxpool2d_nhwc_backward_f32", "pppliiiiiiiiiiii"),
    AVGPOOL2D_FORWARD_F32("pool", "avgpool2d_forward_f32", "pppliiiii"),
    AVGPOOL2D_FORWARD_F64("pool", "avgpool2d_forward_f64", "pppliiiii"),
    AVGPOOL2D_BACKWARD_F32("pool", "avgpool2d_backward_f32", "pppliiiii"),
    AVGPOOL2D_BACKWARD_F64("pool", "avgpool2d_backward_f64", "pppliiiii"),

    INDEX_SELECT_B16("index", "index_select_b16", "pppglll"),
    INDEX_SELECT_B32("index", "index_select_b32", "pppglll"),
    INDEX_SELECT_B64("index", "index_select_b64", "pppglll"),
    INDEX_ADD_F32("index", "index_add_f32", "pppglll"),
    INDEX_ADD_F64("index", "index_add_f64", "pppglll"),

    SGD_STEP_F32("optim", "sgd_step_f32", "ppplddddii"),
    SGD_STEPS_F32("optim", "sgd_steps_f32", "piiddddi"),
    SGD_STEP_F64("optim", "sgd_step_f64", "ppplddddii"),
    ADAM_STEP_F32("optim", "adam_step_f32", "ppppldddddddddi"),
    ADAM_STEP_F64("optim", "adam_step_f64", "ppppldddddddddi");

    final String module;
    final String function;
    final String signature;

    Kernel(String module, String function, String signature) {
        this.module = module;
        this.function = function;
        this.signature = signature;
    }

    /** The PTX parameter type a signature letter declares (".u64", ".u32", ".f64", ".f32", or "[208]" for a Geometry). */
    static String ptxType(char letter) {
        return switch (letter) {
            case 'p', 'l', 'u' -> ".u64";
            case 'i' -> ".u32";
            case 'd' -> ".f64";
            case 'f' -> ".f32";
            case 'g' -> "[" + StridedGeometry.WORDS * 8 + "]";
            default -> throw new IllegalArgumentException("unknown signature letter '" + letter + "'");
        };
    }
}
