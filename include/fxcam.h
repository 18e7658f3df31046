/*
 * fxcam — class-activation maps (Grad-CAM, Grad-CAM++, ...) for convolutional
 * image classifiers, with a stable C ABI.
 *
 * This is the one public header. It is C99, compiles as C and as C++, and
 * exposes no C++ or libtorch type.
 *
 * Conventions that hold for every function below (docs/api.md has the rest):
 *  - Functions return an fx_status: FX_OK (0) on success, a negative FX_ERR_*
 *    code on failure. fx_last_error() then gives a precise, per-thread message.
 *  - On failure, out-parameters are left as they were and nothing needs to be
 *    freed.
 *  - Output images (fx_image *out): if out->data is NULL, fxcam allocates the
 *    buffer, fills in every field, and the caller releases it with
 *    fx_image_free(). If out->data is not NULL, the caller owns the buffer and
 *    its fields must describe exactly the size and type the function produces;
 *    otherwise FX_ERR_INVALID_ARGUMENT.
 *  - Options structs are passed by pointer, start with struct_size, and are
 *    filled with defaults by their *_init() function. NULL means defaults.
 *  - Colors are RGB (OpenCV is BGR).
 *  - Unless said otherwise, functions keep no global state and may be called
 *    from several threads at once on different outputs.
 */
#ifndef FXCAM_H
#define FXCAM_H

#include <stddef.h>
#include <stdint.h>

#include "fxcam_version.h"

/* ---- Export macro ------------------------------------------------------ */
#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(FX_BUILDING_LIBRARY)
#    define FX_API __declspec(dllexport)
#  else
#    define FX_API
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define FX_API __attribute__((visibility("default")))
#else
#  define FX_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ----------------------------------------------------------- */

/* FX_VERSION_NUMBER of the library actually loaded (may differ from the
 * header's when the shared library was upgraded). Thread-safe. */
FX_API uint32_t fx_version(void);
/* "MAJOR.MINOR.PATCH", static storage, never NULL. Thread-safe. */
FX_API const char *fx_version_string(void);

/* ---- Status codes -------------------------------------------------------
 * Values are pinned: never renumbered, only appended. */
typedef int32_t fx_status;

#define FX_OK 0
#define FX_ERR_INVALID_ARGUMENT (-1) /* NULL, zero size, mismatched shapes, out-of-range value */
#define FX_ERR_OUT_OF_MEMORY (-2)
#define FX_ERR_IO (-3)               /* file cannot be opened, read, written or renamed */
#define FX_ERR_FORMAT (-4)           /* corrupt, truncated or not the expected file format */
#define FX_ERR_LIMIT (-5)            /* input exceeds a configured limit (image size, ...) */
#define FX_ERR_UNSUPPORTED (-6)      /* valid request that fxcam does not support */
#define FX_ERR_MODEL (-7)            /* model cannot be loaded or does not behave like a classifier */
#define FX_ERR_LAYER (-8)            /* target layer missing or unsuitable */
#define FX_ERR_DEVICE (-9)           /* requested device (CUDA) not available */
#define FX_ERR_NUMERIC (-10)         /* NaN or infinite values where numbers were expected */
#define FX_ERR_NOT_AVAILABLE (-11)   /* feature not compiled into this build */
#define FX_ERR_INTERNAL (-12)        /* bug in fxcam: please report */
#define FX_ERR_CANCELLED (-13)       /* the caller's progress callback asked to stop (0.2) */

/* Fixed English name of a status ("FX_ERR_IO: input/output error"); never NULL,
 * static storage, thread-safe. Unknown values give "unknown status". */
FX_API const char *fx_status_str(fx_status status);

/* Message describing the last error raised on the calling thread: what went
 * wrong, with which file/value/limit, and what would be valid. Never NULL;
 * "" when no error has occurred on this thread. The pointer stays valid until
 * the next fxcam call on the same thread. A successful call does not clear it. */
FX_API const char *fx_last_error(void);
/* Resets the calling thread's message to "". */
FX_API void fx_clear_error(void);

/* ---- Pixel buffers ----------------------------------------------------- */

#define FX_PIXEL_U8 1  /* uint8_t samples, 0..255 */
#define FX_PIXEL_U16 2 /* uint16_t samples in host byte order, 0..65535 */
#define FX_PIXEL_F32 3 /* float samples; heatmaps are in [0, 1] once normalized */

/* A plain description of pixels in memory, shareable with ctypes/NumPy.
 * Samples are interleaved: channel c of pixel (x, y) is at
 *   (uint8_t *)data + y * stride + (x * channels + c) * fx_pixel_size(pixel_type).
 * channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA. The layout of this struct is
 * frozen (docs/abi.md). */
typedef struct fx_image {
    void *data;         /* first row; owned as described at the top of this file */
    size_t stride;      /* bytes from one row to the next; >= width * channels * sample size */
    uint32_t width;
    uint32_t height;
    uint32_t channels;
    int32_t pixel_type; /* FX_PIXEL_* */
} fx_image;

/* Bytes per sample of a pixel type; 0 for an unknown type. */
FX_API size_t fx_pixel_size(int32_t pixel_type);

/* Allocates a zero-filled image with a tight stride. img->data is released
 * with fx_image_free(). Errors: FX_ERR_INVALID_ARGUMENT (NULL, zero size,
 * channels not 1..4, unknown type), FX_ERR_LIMIT (over 2^31 bytes),
 * FX_ERR_OUT_OF_MEMORY. */
FX_API fx_status fx_image_alloc(fx_image *img, uint32_t width, uint32_t height,
                                uint32_t channels, int32_t pixel_type);

/* Releases img->data allocated by fxcam and zeroes *img. fx_image_free(NULL)
 * and an image whose data is NULL are no-ops. Never call it on a buffer you
 * own (a NumPy array, a stack buffer). */
FX_API void fx_image_free(fx_image *img);

/* ---- Image input; PNG output -------------------------------------------- */

/* What a loader found out about the samples it returned (fx_load_options.info):
 * the range the samples occupy, which the intensity rule needs (fx_intensity).
 * Filled up to min(struct_size, sizeof(fx_image_info)) bytes: the struct only
 * grows at the end. */
typedef struct fx_image_info {
    uint32_t struct_size;      /* sizeof(fx_image_info), set by the caller */
    uint32_t bits_stored;      /* every sample lies in 0 .. 2^bits_stored - 1: 8 for FX_PIXEL_U8 (PNG,
                                * JPEG, DICOM color); for a 16-bit PNG the sBIT chunk's b when every
                                * sample is <= 2^b - 1 (12-bit data written unscaled), else 16 (no
                                * sBIT, or the data scaled to the full range as the PNG standard
                                * says); 16 for DICOM gray (the loader's VOI output spans 0..65535) */
    uint32_t significant_bits; /* what the file declares: the PNG sBIT (largest over the color
                                * channels); 0 when not declared (JPEG, DICOM, PNG without sBIT) */
    int32_t format;            /* FX_FORMAT_PNG, FX_FORMAT_JPEG or FX_FORMAT_DICOM */
} fx_image_info;

#define FX_FORMAT_PNG 1
#define FX_FORMAT_JPEG 2
#define FX_FORMAT_DICOM 3

typedef struct fx_load_options {
    uint32_t struct_size; /* sizeof(fx_load_options) */
    uint32_t max_width;   /* default 32768 */
    uint32_t max_height;  /* default 32768 */
    uint64_t max_pixels;  /* width * height; default 134217728 (2^27) */
    /* Added in 0.2 (programs built against 0.1's smaller struct get 0):
     * the frame of a multi-frame DICOM file to load, 0-based; default 0.
     * Must be 0 for PNG and JPEG (one image each). */
    uint32_t frame;
    /* Added in 0.2: NULL (default) or where a successful load writes what it
     * found out about the samples (fx_image_info; set its struct_size). Not
     * written on error. */
    fx_image_info *info;
} fx_load_options;

FX_API void fx_load_options_init(fx_load_options *opts);

/* Reads an image file. The format is recognised from the first bytes, never
 * from the name:
 *  - PNG (89 50 4E 47 0D 0A 1A 0A), any color type and bit depth, interlaced
 *    or not: 8-bit sources (and 1/2/4-bit gray, scaled to 0..255) give
 *    FX_PIXEL_U8; 16-bit sources FX_PIXEL_U16 with full precision. Gray -> 1
 *    channel, gray+alpha -> 2, RGB -> 3, RGBA -> 4; palette -> RGB (RGBA when
 *    it has tRNS); tRNS on gray/RGB adds an alpha channel.
 *  - JPEG (FF D8 FF), 8-bit, baseline or progressive, through libjpeg-turbo:
 *    gray -> 1 channel FX_PIXEL_U8, YCbCr/RGB -> 3 channels RGB FX_PIXEL_U8
 *    (libjpeg's accurate integer IDCT and fancy upsampling, as PIL decodes).
 *    The EXIF orientation (APP1 tag 0x0112, values 1..8; others ignored, as
 *    PIL does) is applied, so width/height are those of the upright image.
 *    CMYK/YCCK JPEGs and 12-bit JPEGs: FX_ERR_UNSUPPORTED. libjpeg warnings
 *    (premature end of data, corrupt data) are errors (FX_ERR_FORMAT).
 *  - DICOM Part 10 ("DICM" at byte 128), through DCMTK: frame opts->frame.
 *    Gray images: stored values -> modality LUT (Rescale Slope/Intercept or
 *    Modality LUT Sequence) -> VOI (the first VOI LUT; else the first Window
 *    Center/Width with its VOI LUT Function; else the minimum..maximum of the
 *    frame's modality values; DCMTK truncates fractional modality values
 *    toward zero) -> MONOCHROME1 / Presentation LUT Shape INVERSE
 *    inverted -> FX_PIXEL_U16, 1 channel, the VOI output range mapped onto
 *    0..65535 (higher = brighter, as displayed). Color images (RGB, YBR_*,
 *    PALETTE COLOR) -> 3 channels RGB FX_PIXEL_U8. Uncompressed (little/big
 *    endian, explicit/implicit VR), JPEG, JPEG-LS and RLE are decoded; other
 *    transfer syntaxes (JPEG 2000, ...) give FX_ERR_UNSUPPORTED naming the
 *    syntax. Files without pixel data (SR, RT structure sets) and missing or
 *    contradictory attributes (Rows 0, BitsStored > BitsAllocated, Pixel Data
 *    shorter than declared, Window Width < 1) give FX_ERR_FORMAT. Messages
 *    never contain patient attributes.
 * The declared size is checked against the limits in opts before any pixel
 * memory is allocated. A format this build was configured without (-Djpeg,
 * -Ddicom) gives FX_ERR_NOT_AVAILABLE naming the library to install.
 * *out must have data == NULL; fxcam allocates, release with fx_image_free().
 * Errors: FX_ERR_INVALID_ARGUMENT (also frame out of range), FX_ERR_IO
 * (cannot open/read), FX_ERR_FORMAT (not PNG/JPEG/DICOM, corrupt, truncated),
 * FX_ERR_UNSUPPORTED, FX_ERR_LIMIT (over the limits in opts),
 * FX_ERR_NOT_AVAILABLE, FX_ERR_OUT_OF_MEMORY. Thread-safe. */
FX_API fx_status fx_image_load(const char *path, const fx_load_options *opts, fx_image *out);
/* Same as fx_image_load() from a PNG, JPEG or DICOM file held in memory. */
FX_API fx_status fx_image_load_memory(const void *png, size_t size, const fx_load_options *opts,
                                      fx_image *out);

typedef struct fx_save_options {
    uint32_t struct_size;      /* sizeof(fx_save_options) */
    int32_t compression_level; /* zlib level 0..9; default 1 (fastest that compresses) */
} fx_save_options;

FX_API void fx_save_options_init(fx_save_options *opts);

/* Writes img as PNG. Supported: FX_PIXEL_U8 with 1..4 channels, FX_PIXEL_U16
 * with 1..4 channels (16-bit PNG). The file is written under a temporary name
 * in the same directory and renamed over path when complete, so path never
 * holds a half-written image. Errors: FX_ERR_INVALID_ARGUMENT,
 * FX_ERR_UNSUPPORTED (float images: color them or convert first), FX_ERR_IO.
 * Thread-safe for different paths. */
FX_API fx_status fx_image_save(const char *path, const fx_image *img, const fx_save_options *opts);

/* Converts any image to 8-bit RGB for display: gray is replicated, alpha is
 * dropped, FX_PIXEL_U16 is windowed linearly from its own minimum to maximum
 * (radiographs often use 12 of the 16 bits), FX_PIXEL_F32 is clamped to [0,1].
 * Output: width x height, 3 channels, FX_PIXEL_U8; a caller buffer must not
 * share memory with src. Errors: FX_ERR_INVALID_ARGUMENT, FX_ERR_LIMIT
 * (output over 2 GiB), FX_ERR_OUT_OF_MEMORY. */
FX_API fx_status fx_image_to_rgb8(const fx_image *src, fx_image *out);

/* ---- Intensity: from stored samples to [0,1] ----------------------------
 * The one rule that turns an image's samples into [0,1]; the model's input
 * (fx_gradcam_compute) and the figure (fx_image_to_rgb8_intensity) both use
 * it, so a figure shows the image as the model saw it. docs/algorithms.md.
 * Float images are never converted: they are [0,1] by contract. */
#define FX_INTENSITY_AUTO 0      /* FX_INTENSITY_BITS with the image's fx_image_info.bits_stored when
                                  * known, else FX_INTENSITY_CONTAINER (the default) */
#define FX_INTENSITY_CONTAINER 1 /* v / (2^container bits - 1): U8 / 255, U16 / 65535 (fxcam 0.1) */
#define FX_INTENSITY_BITS 2      /* v / (2^bits - 1), clamped to 1: bits = fx_intensity.bits_stored,
                                  * else the image's, else the container's */
#define FX_INTENSITY_MINMAX 3    /* (v - min) / (max - min) over the image's color samples (alpha
                                  * excluded); a constant image gives 0 */
#define FX_INTENSITY_WINDOW 4    /* (v - (center - width / 2)) / width, clamped to [0,1]; center and
                                  * width in the container's sample units (0..255 or 0..65535) */

typedef struct fx_intensity {
    uint32_t struct_size; /* sizeof(fx_intensity) */
    int32_t mode;         /* FX_INTENSITY_*; default FX_INTENSITY_AUTO */
    uint32_t bits_stored; /* 1..16 for FX_INTENSITY_BITS; 0 (default) = the image's, else the container's */
    float window_center;  /* FX_INTENSITY_WINDOW only */
    float window_width;   /* FX_INTENSITY_WINDOW only; > 0 */
} fx_intensity;

FX_API void fx_intensity_init(fx_intensity *rule);
/* "auto", "container", "bits", "minmax", "window"; NULL for an unknown mode. */
FX_API const char *fx_intensity_name(int32_t mode);
/* Parses one of the names above (ASCII case-insensitive). Errors:
 * FX_ERR_INVALID_ARGUMENT naming the valid names; *mode untouched. */
FX_API fx_status fx_intensity_from_name(const char *name, int32_t *mode);
/* Converts src (U8 or U16, 1..4 channels) to FX_PIXEL_F32 in [0,1] with the
 * same channels (alpha is converted with the container rule) by rule (NULL =
 * defaults); info (may be NULL) is what the loader reported of src. F32
 * sources are copied as they are. Errors: FX_ERR_INVALID_ARGUMENT (bad
 * image, unknown mode, bits_stored over 16 (a rule's bits above an 8-bit
 * image's 8 mean 8), window width <= 0 or not finite), FX_ERR_LIMIT, FX_ERR_OUT_OF_MEMORY. */
FX_API fx_status fx_image_to_unit(const fx_image *src, const fx_intensity *rule, const fx_image_info *info,
                                  fx_image *out);
/* fx_image_to_rgb8() with the intensity rule instead of the U16 min..max
 * window: each sample as fx_image_to_unit() maps it, then the float-to-8-bit
 * rule of fx_colormap_apply (round half up), computed pixel by pixel with no
 * float copy of the image. Gray is replicated, alpha dropped. Output: 3
 * channels FX_PIXEL_U8; a caller buffer must not share memory with src.
 * Errors as fx_image_to_unit(). */
FX_API fx_status fx_image_to_rgb8_intensity(const fx_image *src, const fx_intensity *rule,
                                            const fx_image_info *info, fx_image *out);

/* ---- Resize ------------------------------------------------------------ */

/* Bilinear resize with half-pixel centres: the result of OpenCV's
 * cv::resize(INTER_LINEAR) and torch's interpolate(mode="bilinear",
 * align_corners=False, antialias=False), up or down, for U8, U16 and F32 images
 * with 1..4 channels. The caller sets out->width and out->height (and, when
 * out->data is not NULL, the rest); channels and type are those of src.
 * Integer outputs are rounded to nearest. Errors: FX_ERR_INVALID_ARGUMENT,
 * FX_ERR_LIMIT (output over 2 GiB), FX_ERR_OUT_OF_MEMORY. */
FX_API fx_status fx_resize_bilinear(const fx_image *src, fx_image *out);

/* ---- Class-activation maps --------------------------------------------- */

/* Method ids. Values are pinned and only appended (docs/abi.md); the
 * registry below is the one list of methods, with names, titles and papers. */
#define FX_CAM_GRADCAM 0
#define FX_CAM_GRADCAM_PLUSPLUS 1
#define FX_CAM_HIRESCAM 2
#define FX_CAM_XGRADCAM 3
#define FX_CAM_LAYERCAM 4
#define FX_CAM_GRADCAM_ELEMENTWISE 5
#define FX_CAM_EIGENGRADCAM 6
#define FX_CAM_EIGENCAM 7
#define FX_CAM_SCORECAM 8    /* gradient-free, one forward per channel (0.2) */
#define FX_CAM_ABLATIONCAM 9 /* gradient-free, one forward per channel (0.2) */
#define FX_CAM_SMOOTH_GRADCAM_PLUSPLUS 10 /* Grad-CAM++ on noise-averaged gradients (0.2) */
/* Input-space saliency (0.2; fx_result_saliency): the input gradient
 * through ReLUs that pass only positive gradients at positive inputs, and
 * that times the upsampled Grad-CAM map. */
#define FX_CAM_GUIDED_BACKPROP 11
#define FX_CAM_GUIDED_GRADCAM 12
/* Methods known to this header at compile time. A newer library may know
 * more: ask fx_cam_method_count() at run time. */
#define FX_CAM_METHOD_COUNT 13

/* What a method needs from the model (fx_cam_method_info.needs, a bit set). */
#define FX_CAM_NEEDS_GRADIENTS 1u       /* d score / d activations of the target layer */
#define FX_CAM_NEEDS_EXTRA_FORWARDS 2u  /* more forward passes (masked or perturbed inputs) */
#define FX_CAM_NEEDS_INPUT_GRADIENTS 4u /* d score / d input pixels (guided backpropagation) */

/* One entry of the method registry. The library owns every entry and every
 * string in it (static storage, valid for the life of the process; never
 * free). The struct only grows at the end: fields beyond struct_size (the
 * size the library was built with) are absent, so check struct_size before
 * reading a field added after your header. */
typedef struct fx_cam_method_info {
    uint32_t struct_size;    /* sizeof(fx_cam_method_info) of the library */
    int32_t id;              /* FX_CAM_* value */
    const char *name;        /* the name fx_cam_method_from_name and the CLI take, e.g. "gradcam++" */
    const char *aliases;     /* other accepted names, comma-separated without spaces ("" = none),
                              * e.g. "gradcampp,gradcam_plusplus" */
    const char *title;       /* display title as the method's paper spells it, e.g. "Grad-CAM++" */
    const char *slug;        /* file-name friendly name ([a-z0-9_] only), e.g. "gradcampp" */
    const char *description; /* one line, no trailing period, e.g. "spatial mean of the gradient ..." */
    const char *reference;   /* the paper: "Authors, Title, Venue Year" */
    uint32_t needs;          /* FX_CAM_NEEDS_* bits; 0 = the forward activations alone */
} fx_cam_method_info;

/* Number of registry entries (methods this library computes), >= 1. */
FX_API size_t fx_cam_method_count(void);
/* Registry entry index (0 .. fx_cam_method_count() - 1), in a fixed order
 * (ascending id); NULL if index is out of range. Owned by the library. */
FX_API const fx_cam_method_info *fx_cam_method_at(size_t index);
/* Registry entry of method id (FX_CAM_*); NULL if no method has that id. */
FX_API const fx_cam_method_info *fx_cam_method_find(int32_t method);
/* Shortcuts into the entry of method id; NULL if no method has that id.
 * name: "gradcam", "gradcam++", "hirescam", "xgradcam", "layercam",
 * "gradcam-elementwise", "eigengradcam", "eigencam" (see `fxcam methods`);
 * title: "Grad-CAM", "Grad-CAM++", ...; description: one line. */
FX_API const char *fx_cam_method_name(int32_t method);
FX_API const char *fx_cam_method_title(int32_t method);
FX_API const char *fx_cam_method_description(int32_t method);
/* Parses a method name or alias, ASCII case-insensitive (locale-independent):
 * "gradcam++", "GradCAMpp" and "gradcam_plusplus" all give
 * FX_CAM_GRADCAM_PLUSPLUS. On success writes *method. Errors:
 * FX_ERR_INVALID_ARGUMENT (NULL argument, or an unknown name: the message
 * lists every registry name with its aliases); *method is then untouched. */
FX_API fx_status fx_cam_method_from_name(const char *name, int32_t *method);

/* Low-resolution maps from the target layer's activations A and the gradient
 * G of the target score with respect to A, both float32 laid out [n][k][h][w]
 * (NCHW, contiguous). Writes n maps of h*w floats to out_maps, after ReLU and
 * before any resize or normalization. The formulas and constants are
 * pytorch-grad-cam's (Grad-CAM++: alpha = G^2 / (2 G^2 + sum(A) G^3 + 1e-6);
 * XGrad-CAM: sum(G A) / (sum(A) + 1e-7); Grad-CAM element-wise:
 * sum_k ReLU(G A); EigenGrad-CAM and Eigen-CAM: the projection of G A, resp.
 * A, on the first principal component over the h*w positions, sign pinned so
 * that the map agrees with the channel sum); docs/algorithms.md gives each
 * with its paper. Sums are taken in double. gradients may be NULL for a method
 * whose needs lack FX_CAM_NEEDS_GRADIENTS (Eigen-CAM); it is then not read.
 * Errors: FX_ERR_INVALID_ARGUMENT (NULL, zero dimension, unknown method),
 * FX_ERR_NUMERIC (NaN or infinity in A or G, or a map value beyond the float
 * range), FX_ERR_OUT_OF_MEMORY. */
FX_API fx_status fx_cam_lowres(int32_t method, const float *activations, const float *gradients,
                               uint32_t n, uint32_t k, uint32_t h, uint32_t w, float *out_maps);

/* Turns one low-resolution map (h*w floats, from fx_cam_lowres) into a heatmap
 * at out's size: bilinear upsampling, then (normalize != 0) scale-free min-max
 * normalization (docs/algorithms.md):
 *  - a flat low-resolution map, max - min <= 1e-5 * max(|min|, |max|)
 *    (constant up to float rounding; all-zero included), gives 0 everywhere;
 *  - any other map gives y = (U - min U) / (max U - min U) of the upsampled
 *    map U, computed in double: values in [0, 1], the peak exactly 1 and the
 *    minimum exactly 0 whatever the map's absolute scale (a map whose
 *    largest value is 3e-8 included). This equals pytorch-grad-cam's
 *    scale_cam_image result within 1e-6 for maps with max - min >> 1e-7.
 * With normalize == 0 the raw upsampled values are kept, for comparing maps
 * across images. The caller sets out->width and out->height; the result is 1
 * channel FX_PIXEL_F32. Errors: FX_ERR_INVALID_ARGUMENT, FX_ERR_NUMERIC (NaN
 * or infinity in lowres), FX_ERR_LIMIT (output over 2 GiB),
 * FX_ERR_OUT_OF_MEMORY. */
FX_API fx_status fx_cam_upsample(const float *lowres, uint32_t h, uint32_t w, int32_t normalize,
                                 fx_image *out);

/* Normalizes a 1-channel FX_PIXEL_F32 map in place with the same rule,
 * against its own range: flat -> 0 everywhere, else (x - min) / (max - min).
 * Errors: FX_ERR_INVALID_ARGUMENT, FX_ERR_NUMERIC (NaN or infinity; the map is
 * left untouched). */
FX_API fx_status fx_map_normalize(fx_image *map);

/* ---- Colormaps ----------------------------------------------------------
 * The values are OpenCV's COLORMAP_* numbers (OpenCV 4.6), so that a number
 * written for cv2.applyColorMap (cv2.COLORMAP_JET == 2) means the same map
 * here. Renumbered in 0.2 (docs/abi.md). FX_COLORMAP_GRAY is fxcam's own and
 * lies outside OpenCV's range. The ids are not contiguous: enumerate them
 * with fx_colormap_count() and fx_colormap_at(). */
#define FX_COLORMAP_AUTUMN 0
#define FX_COLORMAP_BONE 1
#define FX_COLORMAP_JET 2
#define FX_COLORMAP_WINTER 3
#define FX_COLORMAP_RAINBOW 4
#define FX_COLORMAP_OCEAN 5
#define FX_COLORMAP_SUMMER 6
#define FX_COLORMAP_SPRING 7
#define FX_COLORMAP_COOL 8
#define FX_COLORMAP_HSV 9
#define FX_COLORMAP_PINK 10
#define FX_COLORMAP_HOT 11
#define FX_COLORMAP_PARULA 12
#define FX_COLORMAP_MAGMA 13
#define FX_COLORMAP_INFERNO 14
#define FX_COLORMAP_PLASMA 15
#define FX_COLORMAP_VIRIDIS 16
#define FX_COLORMAP_CIVIDIS 17
#define FX_COLORMAP_TWILIGHT 18
#define FX_COLORMAP_TWILIGHT_SHIFTED 19
#define FX_COLORMAP_TURBO 20
#define FX_COLORMAP_DEEPGREEN 21
#define FX_COLORMAP_GRAY 100 /* fxcam's own: the identity ramp (v, v, v) */

/* Number of colormaps (23 in this version). Thread-safe. */
FX_API uint32_t fx_colormap_count(void);
/* FX_COLORMAP_* id of colormap index (0 .. fx_colormap_count() - 1), in
 * ascending id order; -1 when index is out of range. Together with
 * fx_colormap_name() this lists every map (CLI help, Python). */
FX_API int32_t fx_colormap_at(uint32_t index);
/* Lower-case name, OpenCV's suffix: "autumn", "bone", "jet", ...,
 * "twilight_shifted", "turbo", "deepgreen", and "gray"; NULL for an unknown
 * id. Static storage. */
FX_API const char *fx_colormap_name(int32_t colormap);
/* Parses a colormap name (ASCII case-insensitive, whatever the locale).
 * Errors: FX_ERR_INVALID_ARGUMENT with the list of valid names and numbers. */
FX_API fx_status fx_colormap_from_name(const char *name, int32_t *colormap);
/* Copies the 256-entry table, RGB interleaved, into rgb[768]. The tables are
 * those of OpenCV 4.6's applyColorMap, in RGB order. Errors:
 * FX_ERR_INVALID_ARGUMENT (unknown id, with the valid list; rgb NULL). */
FX_API fx_status fx_colormap_table(int32_t colormap, uint8_t *rgb);
/* Colors a 1-channel map: FX_PIXEL_U8 indexes the table directly; FX_PIXEL_F32
 * is indexed with the one float-to-8-bit rule of fxcam (also used by
 * fx_overlay and fx_image_to_rgb8): NaN -> 0, clamped to [0,1], then
 * floor(v * 255 + 0.5) computed exactly (in double), i.e. v * 255 rounded to
 * nearest, halves up. Output: same size, 3 channels, FX_PIXEL_U8.
 * Errors: FX_ERR_INVALID_ARGUMENT (unknown colormap with the valid list, bad
 * map or out), FX_ERR_LIMIT, FX_ERR_OUT_OF_MEMORY. */
FX_API fx_status fx_colormap_apply(const fx_image *map, int32_t colormap, fx_image *out);

/* ---- Overlay ------------------------------------------------------------ */

typedef struct fx_overlay_options {
    uint32_t struct_size; /* sizeof(fx_overlay_options) */
    float alpha;          /* weight of the heatmap, [0,1]; default 0.4 */
    int32_t colormap;     /* FX_COLORMAP_*; default FX_COLORMAP_JET */
    float threshold;      /* map values below it leave the image untouched; [0,1], default 0 */
} fx_overlay_options;

FX_API void fx_overlay_options_init(fx_overlay_options *opts);

/* Blends the colored heatmap over the image:
 *   out = round((1 - alpha) * image_rgb8 + alpha * colormap(heatmap))
 * where heatmap >= threshold, out = image_rgb8 elsewhere. image is converted
 * with fx_image_to_rgb8() first; heatmap is 1-channel FX_PIXEL_F32 in [0,1] of
 * the same size. Output: 3 channels FX_PIXEL_U8; a caller buffer must not
 * share memory with image or heatmap. Errors:
 * FX_ERR_INVALID_ARGUMENT (size mismatch, alpha or threshold outside [0,1],
 * unknown colormap), FX_ERR_LIMIT, FX_ERR_OUT_OF_MEMORY. */
FX_API fx_status fx_overlay(const fx_image *image, const fx_image *heatmap,
                            const fx_overlay_options *opts, fx_image *out);

/* ---- Figures ------------------------------------------------------------ */

typedef struct fx_figure_options {
    uint32_t struct_size;  /* sizeof(fx_figure_options) */
    const char *label;     /* predicted class name; NULL = not shown */
    float confidence;      /* [0,1] shown in %; negative = not shown */
    const char *method;    /* e.g. "Grad-CAM"; NULL = not shown */
    const char *layer;     /* target layer; NULL = not shown */
    const char *timestamp; /* shown as given; NULL = current UTC time, ISO-8601 */
    float alpha;           /* overlay weight, default 0.4 */
    int32_t colormap;      /* default FX_COLORMAP_JET */
    float threshold;       /* overlay threshold, default 0 */
    uint32_t panel_height; /* height of each panel, 1..8192; 0 (default) = the image's own height
                            * capped to 1024 (a 2000 px radiograph is halved, so that a hairline
                            * stays visible). Text is 1x under 256 px, 2x under 768, else 3x. */
    /* Added in 0.2 (struct_size tells which fields a caller knows). */
    const char *source;    /* input file and model (e.g. "chest.png | model resnet.pt"), shown
                            * in the caption band after the layer; NULL = not shown */
    const fx_image *saliency; /* fx_figure_compose: an input-space saliency image (fx_result_saliency:
                               * FX_PIXEL_F32 in [0,1], 1 or 3 channels, the image's size) drawn as a
                               * 4th panel "Saliency (<method>)" as it is, without colormap; NULL = none */
} fx_figure_options;

FX_API void fx_figure_options_init(fx_figure_options *opts);

/* Composes original | heatmap | overlay side by side, with a caption band
 * (label, confidence, method, layer, source, timestamp) and a color-bar
 * legend. The heatmap panel's title is "Heatmap (<method>)", or "Heatmap"
 * when that is wider than the panel at the figure's text scale (the caption
 * names the method; likewise "Saliency (<method>)"). The caption is
 * wrapped at field boundaries over as many lines as it needs (the band grows;
 * a field wider than a line is broken inside, after a space or '/' when it
 * can be). A line is as wide as the panels and their color bars, or 80
 * characters where those are narrower: a longer caption takes more lines,
 * not more width. A value over 512 characters is cut and ends in "...".
 * heatmap: 1-channel FX_PIXEL_F32 in [0,1], same size as image. Output:
 * 3 channels FX_PIXEL_U8, size decided by the layout (out->data must be NULL).
 * Text is ASCII; other bytes are drawn as '?'. Errors:
 * FX_ERR_INVALID_ARGUMENT (NULL, size or type mismatch, out->data not NULL,
 * alpha, threshold or confidence out of range, unknown colormap,
 * panel_height over 8192), FX_ERR_LIMIT (panels would be over 16384 px wide),
 * FX_ERR_OUT_OF_MEMORY. */
FX_API fx_status fx_figure_compose(const fx_image *image, const fx_image *heatmap,
                                   const fx_figure_options *opts, fx_image *out);

/* Composes original | map_a | map_b | |map_a - map_b| with titles name_a and
 * name_b (e.g. "Grad-CAM", "Grad-CAM++"; NULL gives "Map A", "Map B") and the
 * same caption band. map_a and map_b are drawn as overlays on the image,
 * explained by a 0..1 color bar after them; the difference is colored on its
 * own scale, 0 to its maximum (in its title), with its own color bar
 * labelled 0, max/2 and max, so that small differences show. A maximum
 * within 1e-5 of the maps' magnitude is float rounding: shown as 0.
 * Errors: as fx_figure_compose(). */
FX_API fx_status fx_figure_compare(const fx_image *image, const fx_image *map_a, const char *name_a,
                                   const fx_image *map_b, const char *name_b,
                                   const fx_figure_options *opts, fx_image *out);

/* ---- Models and Grad-CAM -----------------------------------------------
 * Needs a library built with libtorch (meson -Dtorch=enabled); otherwise
 * fx_model_load() returns FX_ERR_NOT_AVAILABLE. docs/model-format.md
 * describes the models fxcam accepts and their optional fxcam.json metadata.
 *
 * Threads: one fx_model may be used by several threads at once
 * (fx_gradcam_compute and every getter); results are independent objects.
 * The CPU thread count (fx_model_options.threads) is a libtorch setting
 * shared by the whole process: the last fx_model_load() with threads >= 0
 * decides it; threads = -1 leaves it alone. fxcam
 * runs its own graphs with libtorch's graph-executor optimizations off (with
 * them on, repeated gradient calls failed and CUDA runs hung;
 * docs/performance.md gives the cost); that switch is thread-local in
 * libtorch and fxcam sets it only for the duration of each of its calls, so
 * other TorchScript code in the process is not affected.
 * On a CPU shared with other busy processes, set OMP_WAIT_POLICY=PASSIVE in
 * the environment before the process starts (libgomp reads it once, when it
 * is loaded; in Python before importing torch or fxcam): idle OpenMP threads
 * then sleep instead of spinning (docs/performance.md, "Steady under load"). */

typedef struct fx_model fx_model;

typedef struct fx_model_options {
    uint32_t struct_size;    /* sizeof(fx_model_options) */
    const char *device;      /* "auto" (default: CUDA when available, else CPU), "cpu", "cuda", "cuda:N" */
    int32_t threads;         /* CPU intra-op threads, libtorch's process-wide setting: 0 (default) =
                              * the CPUs this process may run on (sched_getaffinity), >= 1 that many, -1 = leave the process's setting
                              * as it is (a PyTorch program loading models between epochs) */
    uint32_t input_width;    /* 0 (default) = from the model's metadata, else 224 */
    uint32_t input_height;   /* 0 (default) = from the model's metadata, else 224 */
    uint32_t input_channels; /* 1 or 3; 0 (default) = from the metadata, else 3 */
    const float *mean;       /* input_channels values; NULL (default) = metadata, else ImageNet
                              * (0.485, 0.456, 0.406) for 3 channels, 0.5 for 1 */
    const float *std;        /* same; ImageNet (0.229, 0.224, 0.225), 0.5 for 1 channel */
    /* Added in 0.2 (struct_size tells which fields a caller knows). */
    uint32_t mean_count;     /* entries in mean[]; must equal the input channels when mean != NULL
                              * (0 = legacy caller: input_channels entries are read) */
    uint32_t std_count;      /* entries in std[]; as mean_count */
    int32_t output_kind;     /* FX_OUTPUT_AUTO (default), FX_OUTPUT_LOGITS, FX_OUTPUT_PROBABILITIES:
                              * what the model's output is; overrides graph and metadata */
    int32_t strict;          /* non-zero: what is otherwise a load warning that makes results
                              * unreliable (training-mode export, FX_WARN_TRAINING_MODE) is an
                              * FX_ERR_MODEL error with the same advice */
    /* Added in 0.2: how the model was trained (docs/model-format.md). Each
     * overrides the fxcam.json key of the same name; the zero default leaves
     * the metadata's choice, else fxcam 0.1's behaviour. */
    int32_t intensity;       /* FX_INTENSITY_*: AUTO (default) = fxcam.json "intensity", else AUTO */
    uint32_t bits_stored;    /* 1..16; 0 = fxcam.json "bits_stored", else the image's */
    float window_center;     /* with window_width > 0: FX_INTENSITY_WINDOW's window (sample units) */
    float window_width;      /* 0 = fxcam.json "window" */
    int32_t resize_mode;     /* FX_RESIZE_*: 0 (default) = fxcam.json "resize_mode", else stretch */
    uint32_t resize_size;    /* FX_RESIZE_SHORTER_SIDE_CROP: the shorter side before the crop
                              * (torchvision Resize(s)); 0 = fxcam.json "resize_size", else the input's
                              * shorter side * 256 / 224, rounded down (ImageNet's 256 for 224) */
    /* Added in 0.2: class names in result order, overriding fxcam.json
     * "class_names"; NULL (default) = the metadata's. class_name_count must be
     * fx_model_result_class_count() (2 for a single-logit model), else
     * FX_ERR_INVALID_ARGUMENT. The strings are copied at load. */
    const char *const *class_names;
    uint32_t class_name_count;
} fx_model_options;

/* How an image is brought to the model's input size (fx_model_options.
 * resize_mode, fxcam.json "resize_mode"); docs/algorithms.md. Every mode but
 * stretch resamples with antialiasing when downscaling: torch's
 * interpolate(mode="bilinear", antialias=True, align_corners=False), which
 * torchvision's Resize does on tensors and PIL's BILINEAR does on images. */
#define FX_RESIZE_DEFAULT 0          /* fxcam.json's, else FX_RESIZE_STRETCH */
#define FX_RESIZE_STRETCH 1          /* to the input size, aspect not kept, no antialias (fxcam 0.1) */
#define FX_RESIZE_STRETCH_ANTIALIAS 2 /* to the input size, aspect not kept (torchvision Resize((h, w))) */
#define FX_RESIZE_LETTERBOX 3        /* aspect kept, the image fits inside the input and is centered;
                                      * the rest is black (intensity 0) before normalization */
#define FX_RESIZE_SHORTER_SIDE_CROP 4 /* shorter side to resize_size, aspect kept, then the center
                                      * input-size crop (torchvision Resize(s) + CenterCrop((h, w))) */

/* "default", "stretch", "stretch-antialias", "letterbox", "shorter-side-crop";
 * NULL for an unknown mode. */
FX_API const char *fx_resize_mode_name(int32_t mode);
/* Parses a name above (ASCII case-insensitive). Errors: FX_ERR_INVALID_ARGUMENT
 * with the valid names. */
FX_API fx_status fx_resize_mode_from_name(const char *name, int32_t *mode);

/* What a model's output holds (fx_model_options.output_kind, fx_model_output_kind).
 * Decided at load, in this order: the option; the graph (an output produced
 * by aten::softmax or aten::log_softmax over dim 1, or aten::sigmoid,
 * possibly followed by view/reshape/flatten/contiguous); fxcam.json
 * "output"; the probe's values (every row in [0,1] summing to 1, or a
 * single output inside (0,1), for 4 probe images: FX_WARN_OUTPUT_KIND).
 * Details: docs/model-format.md. */
#define FX_OUTPUT_AUTO 0   /* decide at load as above */
#define FX_OUTPUT_LOGITS 1 /* raw scores: fxcam applies softmax (sigmoid for one output) and
                            * differentiates the logit */
#define FX_OUTPUT_PROBABILITIES 2 /* the model ends in softmax/log_softmax/sigmoid. When the graph shows
                            * it, fxcam removes it: the logits are its input, the probabilities
                            * equal the model's own outputs (exp of log_softmax; each class's own
                            * sigmoid for a multi-output sigmoid) and the CAM differentiates the
                            * logit (the Grad-CAM paper). Otherwise the outputs are reported as they
                            * are (one output p: [1 - p, p]) and the CAM differentiates them. */

FX_API void fx_model_options_init(fx_model_options *opts);

/* Loads a TorchScript classifier (torch.jit.save of a traced or scripted
 * model) and checks it with one forward pass of a zero image: its output
 * must be [batch, classes]. Every module's output shape is recorded for
 * fx_model_layer(). Then 4 probe images (black, white, gray, a pattern)
 * decide the output kind (FX_OUTPUT_*), and the pattern run twice shows
 * whether the model is deterministic. A model saved in training mode
 * (modules flagged training, BatchNorm/Dropout traced in training mode) is
 * evaluated in eval mode, with FX_WARN_TRAINING_MODE (fx_model_warning).
 * On success *out receives a model released with fx_model_free(). Errors: FX_ERR_INVALID_ARGUMENT (NULL, bad option, unknown
 * device name, mean_count/std_count not the input channels), FX_ERR_IO (file
 * cannot be opened, is a directory or not a regular file), FX_ERR_FORMAT (not
 * a TorchScript archive, truncated), FX_ERR_MODEL (bad fxcam.json naming the
 * key, output not [batch, classes], softmax over a single output, forward
 * fails; with strict: a training-mode export), FX_ERR_DEVICE (CUDA asked
 * for but not available), FX_ERR_NOT_AVAILABLE (built without libtorch). */
FX_API fx_status fx_model_load(const char *path, const fx_model_options *opts, fx_model **out);
/* Same as fx_model_load() from the bytes of a TorchScript archive held in
 * memory (e.g. embedded in an executable); the bytes are copied, the caller
 * keeps ownership of data. Errors as fx_model_load(), and
 * FX_ERR_INVALID_ARGUMENT for NULL data or size 0. */
FX_API fx_status fx_model_load_memory(const void *data, size_t size, const fx_model_options *opts,
                                      fx_model **out);
/* fx_model_free(NULL) is a no-op. No call on the model may be running. */
FX_API void fx_model_free(fx_model *model);

/* Device the model runs on, e.g. "cpu" or "cuda:0"; "" for NULL. */
FX_API const char *fx_model_device(const fx_model *model);
/* Input size and channels used for preprocessing. Any out pointer may be NULL. */
FX_API fx_status fx_model_input_size(const fx_model *model, uint32_t *width, uint32_t *height,
                                     uint32_t *channels);
/* Number of logits (1 for a single-logit model); 0 for NULL. */
FX_API uint32_t fx_model_class_count(const fx_model *model);
/* Number of classes as reported in results: 2 (negative, positive) for a
 * single-logit model, else fx_model_class_count(). */
FX_API uint32_t fx_model_result_class_count(const fx_model *model);
/* Name of result class i: from the metadata's class_names, else "class <i>"
 * (single-logit models: "negative", "positive"). NULL when i is out of range.
 * Owned by the model. */
FX_API const char *fx_model_class_name(const fx_model *model, uint32_t index);
/* The metadata's positive_class (the class of interest, e.g. "fracture"), or
 * -1 when not given or for NULL. */
FX_API int32_t fx_model_positive_class(const fx_model *model);
/* Per-channel mean and std used for preprocessing (fx_model_input_size's
 * channels values each, at most 3): copied into mean[] and std[], either may
 * be NULL. Errors: FX_ERR_INVALID_ARGUMENT for a NULL model. */
FX_API fx_status fx_model_normalization(const fx_model *model, float *mean, float *std);
/* Default target layer: the metadata's target_layer, else the automatic one:
 * the last module, in execution order, whose output is a 4-D feature map
 * with height * width > 1 (a parent that returns its last child's output
 * counts as finishing after it: ResNet gives "layer4", torchvision DenseNet
 * "features"). NULL when no module qualifies. Owned by the model. */
FX_API const char *fx_model_default_layer(const fx_model *model);

#define FX_LAYER_MAX_RANK 8

typedef struct fx_layer_info {
    uint32_t struct_size;     /* sizeof(fx_layer_info), set by the caller; a smaller (older) size gets
                               * the fields that fit in it, nothing is written beyond it */
    const char *name;         /* dotted path, e.g. "layer4.1.conv2"; owned by the model */
    const char *type;         /* class name, e.g. "Conv2d", "Sequential"; owned by the model */
    uint32_t rank;            /* dimensions of the output for one image at the input size; 0 when the
                               * module is not called by forward or does not return one tensor */
    int64_t shape[FX_LAYER_MAX_RANK];
    int32_t is_feature_map;   /* 1 when the output is 4-D [batch, channels, h, w] with h * w > 1: a valid
                               * target layer (a 1x1 map, e.g. after global pooling, has no spatial
                               * information and is refused with FX_ERR_LAYER) */
} fx_layer_info;

/* Every submodule, in definition order (fx_model_layer_count of them). A
 * module called several times reports the shape of its last call, which is
 * also the call that Grad-CAM captures. Writes min(info->struct_size,
 * sizeof(fx_layer_info)) bytes of info (fields grow only at the end).
 * Errors: FX_ERR_INVALID_ARGUMENT (NULL, struct_size smaller than the
 * struct_size field itself, index out of range). */
FX_API size_t fx_model_layer_count(const fx_model *model);
FX_API fx_status fx_model_layer(const fx_model *model, size_t index, fx_layer_info *info);

/* Bound on fx_gradcam_options.method_count (repeats allowed): a guard
 * against a mistaken count, not a property of the registry. */
#define FX_MAX_METHODS_PER_CALL 64

typedef struct fx_gradcam_options {
    uint32_t struct_size;   /* sizeof(fx_gradcam_options) */
    const char *layer;      /* dotted module path; NULL (default) = fx_model_default_layer() */
    int32_t target_class;   /* -1 (default) = predicted class; else a class index. Single-logit models:
                             * 1 = positive (score = logit), 0 = negative (score = -logit) */
    const int32_t *methods; /* FX_CAM_* list; NULL (default) = Grad-CAM only */
    uint32_t method_count;  /* entries in methods; 0 = Grad-CAM only; at most FX_MAX_METHODS_PER_CALL */
    uint32_t batch_size;    /* images per forward pass; 0 (default) = 8 */
    int32_t keep_raw;       /* non-zero: also keep unnormalized heatmaps (fx_result_raw_heatmap) */
    /* Added in 0.2: what the loader reported of each image (fx_load_options.
     * info): NULL (default) or n entries. The intensity rule (FX_INTENSITY_AUTO
     * and FX_INTENSITY_BITS) reads bits_stored from it. */
    const fx_image_info *image_info;
    /* Added in 0.2, for the methods with one forward per channel of the
     * layer (needs FX_CAM_NEEDS_EXTRA_FORWARDS: Score-CAM, Ablation-CAM;
     * 512 channels on ResNet-18's layer4 = 512 forwards per image):
     * channel_batch_size: modified inputs per forward pass, built on the
     * model's device; 0 (default) = 32. Peak memory grows with it, not with
     * the channel count. */
    uint32_t channel_batch_size;
    /* NULL (default), or called with done = 0 once the total is known
     * (images x channels x such methods) and after each batch of per-channel
     * forwards, on the calling thread. A non-zero return stops the call with
     * FX_ERR_CANCELLED (no result). user is progress_user. */
    int (*progress)(void *user, uint64_t done, uint64_t total);
    void *progress_user;
    /* Added in 0.2, targets (docs/algorithms.md, "Targets"). target_classes:
     * NULL (default) or n entries, one per image of the call: -1 = that
     * image's predicted class, else a class index as for target_class;
     * overrides target_class. class_weights: NULL (default) or
     * class_weight_count == fx_model_class_count() finite floats, not all 0:
     * the score differentiated (and scored by Score-/Ablation-CAM) is
     * sum_c class_weights[c] * logit_c for every image (multi-label: "explain
     * these findings"); fx_result_target_class() is then -1. class_weights
     * with target_classes, or with target_class != -1, is refused
     * (FX_ERR_INVALID_ARGUMENT). */
    const int32_t *target_classes;
    const float *class_weights;
    uint32_t class_weight_count;
    /* Added in 0.2, Smooth Grad-CAM++ (FX_CAM_SMOOTH_GRADCAM_PLUSPLUS):
     * smooth_samples noisy copies of each model input (0 = default 8; at
     * most 256), Gaussian noise of standard deviation smooth_noise x (max -
     * min) of that image's normalized input (0 = default 0.15, SmoothGrad's
     * 15 %; at most 10), drawn from the seeded generator documented in
     * docs/algorithms.md (same seed, same maps; independent of batch_size). */
    uint32_t smooth_samples;
    float smooth_noise;
    uint64_t smooth_seed;
    /* Added in 0.2, refinements any method takes (docs/algorithms.md,
     * "Refinements"; pytorch-grad-cam's aug_smooth, eigen_smooth and
     * target_layers). aug_smooth non-zero: test-time augmentation, 6 runs
     * per batch (no flip / horizontal flip x the normalized input times 1.0,
     * 1.1, 0.9); each run's map is min-max scaled at the model input size,
     * flipped back, and the 6 are averaged. Targets are decided on the
     * unaugmented input. Works for any input size (a horizontal flip keeps
     * width and height). eigen_smooth non-zero: each map is the first
     * principal component of the method's weighted activations (as
     * Eigen-CAM; sign pinned to agree with the plain map) instead of their
     * channel sum; no effect on Eigen-CAM and EigenGrad-CAM, which already
     * are. layers: NULL (default) or layer_count (1..FX_MAX_LAYERS_PER_CALL)
     * dotted names, each a valid target layer, no repeats; overrides layer.
     * Each layer's map is min-max scaled at the layer's size, upsampled to
     * the model input size, averaged over the layers and min-max scaled
     * again. With aug_smooth or several layers, fx_result_lowres is that
     * combined map at the model input size and fx_result_layer names the
     * layers joined by ','. */
    int32_t aug_smooth;
    int32_t eigen_smooth;
    const char *const *layers;
    uint32_t layer_count;
} fx_gradcam_options;

/* Bound on fx_gradcam_options.layer_count. */
#define FX_MAX_LAYERS_PER_CALL 16

FX_API void fx_gradcam_options_init(fx_gradcam_options *opts);

typedef struct fx_result fx_result;

/* Computes class-activation maps for n images. Each image (U8, U16 or F32
 * with every sample in [0,1], 1..4 channels, at least 2x2) is converted to
 * float in [0,1] by the model's intensity rule (fx_intensity: by default
 * U8 / 255, U16 / 65535 unless options.image_info gives the bits stored),
 * alpha dropped, gray replicated to 3 channels or RGB turned to luma
 * (0.299 R + 0.587 G + 0.114 B) as the model expects, brought to the input
 * size by the model's resize mode (FX_RESIZE_*; default bilinear stretch, as
 * fxcam 0.1) and normalized with (x - mean) / std. One forward pass and
 * one gradient pass per batch serve every method. The score differentiated
 * is the target class's logit (-logit for the negative class of a
 * single-logit model; for FX_OUTPUT_PROBABILITIES without recoverable
 * logits, the output itself). Predictions use softmax for >= 2 logits,
 * sigmoid for one (probabilities [1 - p, p]); FX_OUTPUT_* says what changes
 * for models that end in an activation. Heatmaps have each image's own size.
 * Answered but doubtful cases give result warnings (fx_result_warning): an
 * all-zero map, an image upscaled more than 4x or downscaled more than 16x.
 * On success *out receives a result released with fx_result_free().
 * Errors: FX_ERR_INVALID_ARGUMENT (NULL, n == 0, bad image, image smaller
 * than 2x2, target class out of range, unknown method), FX_ERR_LAYER (layer
 * missing, with the closest names; not 4-D; a 1x1 map, naming the default
 * layer), FX_ERR_NUMERIC (NaN or infinite logits or maps), FX_ERR_MODEL
 * (forward fails), FX_ERR_OUT_OF_MEMORY. F32 samples outside [0,1] or NaN:
 * FX_ERR_INVALID_ARGUMENT "image i: float samples range over [lo, hi]; fxcam
 * expects [0,1]: divide by 255 (8-bit data) or 65535 (16-bit)".
 * Thread-safe on one model. */
FX_API fx_status fx_gradcam_compute(fx_model *model, const fx_image *images, size_t n,
                                    const fx_gradcam_options *opts, fx_result **out);

/* Forward only: the model's class probabilities (and logits) for n images,
 * without gradients, maps or a result object, e.g. for faithfulness metrics
 * that score many perturbed images. Each image is preprocessed exactly as
 * fx_gradcam_compute does (opts: batch_size and image_info are used; layer,
 * target_class, methods and keep_raw are ignored; NULL = defaults), and the
 * numbers equal fx_result_probabilities / fx_result_logits of that call
 * (same output-kind rules: softmax, sigmoid for one logit giving [1 - p, p],
 * each class's own sigmoid after a final multi-output sigmoid, or the
 * outputs as they are). Batched by opts->batch_size (0 = 8).
 *  probabilities (out): n * fx_model_result_class_count() floats, image-major;
 *  logits (out, may be NULL): n * fx_model_class_count() floats.
 * Both are caller-owned and written only on success. FX_WARN_OUTPUT_KIND
 * range checks are not reported here (no result). Errors:
 * FX_ERR_INVALID_ARGUMENT (NULL model/images/probabilities, n == 0, bad
 * image, F32 samples outside [0,1]), FX_ERR_NUMERIC (non-finite logits),
 * FX_ERR_MODEL (forward fails), FX_ERR_OUT_OF_MEMORY, FX_ERR_NOT_AVAILABLE.
 * Thread-safe on one model. */
FX_API fx_status fx_model_predict(fx_model *model, const fx_image *images, size_t n,
                                  const fx_gradcam_options *opts, float *probabilities, float *logits);

/* fx_result_free(NULL) is a no-op. */
FX_API void fx_result_free(fx_result *result);
/* Number of images; 0 for NULL. */
FX_API size_t fx_result_count(const fx_result *result);
/* Target layer used; owned by the result. */
FX_API const char *fx_result_layer(const fx_result *result);
/* Number of methods and method j (FX_CAM_*), in the order requested; -1 if out of range. */
FX_API uint32_t fx_result_method_count(const fx_result *result);
FX_API int32_t fx_result_method(const fx_result *result, uint32_t j);
/* Per image i: predicted class (argmax of probabilities), its probability,
 * the class whose score was differentiated. -1 / NaN when out of range. */
FX_API int32_t fx_result_predicted_class(const fx_result *result, size_t i);
FX_API float fx_result_confidence(const fx_result *result, size_t i);
FX_API int32_t fx_result_target_class(const fx_result *result, size_t i);
/* Probabilities (fx_model_result_class_count values) and logits
 * (fx_model_class_count values; the model's outputs themselves for
 * FX_OUTPUT_PROBABILITIES without recoverable logits) of image i; *count receives the number (may be
 * NULL). Owned by the result; NULL when out of range. */
FX_API const float *fx_result_probabilities(const fx_result *result, size_t i, uint32_t *count);
FX_API const float *fx_result_logits(const fx_result *result, size_t i, uint32_t *count);
/* Heatmap of image i for method index j (0..method_count-1): 1-channel
 * FX_PIXEL_F32 at the image's size, min-max normalized to [0,1]. Owned by the
 * result; NULL when out of range. */
FX_API const fx_image *fx_result_heatmap(const fx_result *result, size_t i, uint32_t j);
/* Same before normalization (only with keep_raw; else NULL). */
FX_API const fx_image *fx_result_raw_heatmap(const fx_result *result, size_t i, uint32_t j);
/* Low-resolution map at the layer's size (after ReLU, before upsampling). */
FX_API const fx_image *fx_result_lowres(const fx_result *result, size_t i, uint32_t j);
/* Guided methods (needs FX_CAM_NEEDS_INPUT_GRADIENTS: FX_CAM_GUIDED_BACKPROP,
 * FX_CAM_GUIDED_GRADCAM; docs/algorithms.md): the input-space saliency of
 * image i for method index j, FX_PIXEL_F32 with the model's input channels
 * (3 RGB, or 1), at the image's size, values in [0, 1]. It is the map p at
 * the model input (guided backprop: gb = d score / d normalized input with
 * every ReLU's backward replaced by g * (x > 0) * (g > 0); Guided Grad-CAM:
 * gb times the Grad-CAM heatmap at the model input size, Selvaraju et al.
 * 2017, section 3) through pytorch-grad-cam's deprocess_image without its
 * uint8 step: clip((p - mean) / (std + 1e-5) * 0.1 + 0.5, 0, 1), mean and
 * population std over all channels and pixels of the image; 0.5 = no
 * gradient. Then brought into the image's geometry like heatmaps (bilinear
 * per channel; crops and letterboxing as fx_result_heatmap; 0 outside the
 * seen region). For these methods fx_result_heatmap is max over channels of
 * |p| (Simonyan et al. 2014), normalized like every heatmap, and
 * fx_result_lowres is that magnitude at the model input size. Owned by the
 * result; NULL for other methods or when out of range. */
FX_API const fx_image *fx_result_saliency(const fx_result *result, size_t i, uint32_t j);

/* ---- Faithfulness metrics ---------------------------------------------------
 * Does a map point at what the model uses? Each metric perturbs the image
 * following the map and watches the probability of the explained class
 * (docs/evaluation.md gives each definition, its paper and the settings).
 * The metrics are plain C over plain arrays: the model is reached through a
 * callback that scores a batch of images, so they work with any model. */

/* Scores n images (FX_PIXEL_F32 in [0,1], the shape of the image given to
 * fx_faithfulness_compute): writes scores[k] = the probability, in [0,1], of
 * the class being explained for images[k]. Returns FX_OK, or an error status
 * that fx_faithfulness_compute returns as it is (set fx_last_error's message
 * with the reason, e.g. by returning a failed fxcam call's status). */
typedef fx_status (*fx_score_batch_fn)(void *user, const fx_image *images, size_t n, float *scores);

#define FX_DELETION_ZERO 0 /* deleted pixels become 0 (black): RISE's deletion */
#define FX_DELETION_BLUR 1 /* deleted pixels become the blurred image's */

typedef struct fx_faithfulness_options {
    uint32_t struct_size;      /* sizeof(fx_faithfulness_options) */
    uint32_t steps;            /* deletion/insertion: pixels change in steps of 1/steps of the image,
                                * steps + 1 curve points; 1..1024, default 32 */
    int32_t deletion_baseline; /* FX_DELETION_ZERO (default) or FX_DELETION_BLUR */
    float blur_sigma;          /* insertion's start image (and the blur baseline): Gaussian blur, sigma
                                * in pixels, 2 * ceil(sigma) + 1 taps, edges replicated; (0, 100],
                                * default 5 (RISE: 11 taps, sigma 5) */
    uint32_t road_steps;       /* ROAD removes k / road_steps of the pixels, k = 1 .. road_steps - 1;
                                * 2..100, default 10 (10 %, 20 %, ..., 90 %) */
    float road_noise;          /* ROAD: standard deviation of the noise added to each imputed sample,
                                * in [0,1] intensity units, then clamped to [0,1]; [0, 1], default 0.01
                                * (Rong et al.) */
    uint64_t seed;             /* ROAD's noise; default 0. Same seed, same numbers */
    uint32_t batch_size;       /* images per score call; 1..1024, default 16 */
} fx_faithfulness_options;

FX_API void fx_faithfulness_options_init(fx_faithfulness_options *opts);

/* The metrics of one image and one map. Y = score of the image. */
typedef struct fx_faithfulness {
    uint32_t struct_size;       /* sizeof(fx_faithfulness), set by the caller; a smaller (older) size
                                 * gets the fields that fit in it */
    float score;                /* Y, in [0,1] */
    float explanation_score;    /* O: score of the explanation map image * heatmap */
    float average_drop;         /* max(0, Y - O) / Y * 100, in [0, 100]; 0 when Y == 0 */
    int32_t increase;           /* 1 when O > Y, else 0 */
    float deletion_auc;         /* in [0,1]; lower = more faithful */
    float insertion_auc;        /* in [0,1]; higher = more faithful */
    float road_morf;            /* ROAD, most relevant first: mean over the fractions of Y - score, in
                                 * [-1, 1]; higher = more faithful */
    float road_lerf;            /* ROAD, least relevant first: the same; lower = more faithful */
} fx_faithfulness;

/* Computes the metrics of heatmap for image, scoring perturbed copies of
 * image through score(user, ...) in batches of opts->batch_size (NULL opts =
 * defaults): 2 + 2 * steps + 2 * (road_steps - 1) images (84 by default).
 * image: FX_PIXEL_F32, 1..4 channels, every sample in [0,1] (the image as the
 * model reads it: fx_image_to_unit); heatmap: 1-channel FX_PIXEL_F32 of the
 * same width and height, finite (fx_result_heatmap). Pixels are ranked by
 * decreasing heatmap value, ties by row-major position. Writes
 * min(out->struct_size, sizeof(fx_faithfulness)) bytes of *out on success.
 * Errors: FX_ERR_INVALID_ARGUMENT (NULL, bad image or heatmap, shapes differ,
 * samples outside [0,1], an option out of range), FX_ERR_NUMERIC (a NaN
 * heatmap value; a score that is not a number in [0,1], naming it),
 * FX_ERR_OUT_OF_MEMORY, or the callback's status. Reentrant. */
FX_API fx_status fx_faithfulness_compute(const fx_image *image, const fx_image *heatmap,
                                         fx_score_batch_fn score, void *user,
                                         const fx_faithfulness_options *opts, fx_faithfulness *out);

/* The metrics over n images, as the papers report them. */
typedef struct fx_faithfulness_summary {
    uint32_t struct_size;       /* sizeof(fx_faithfulness_summary), set by the caller */
    uint32_t images;            /* n */
    float average_drop;         /* mean of the images' average_drop, in % (Chattopadhay et al.) */
    float increase_in_confidence; /* % of the images whose O > Y */
    float deletion_auc;         /* means of the images' values */
    float insertion_auc;
    float road_morf;
    float road_lerf;
} fx_faithfulness_summary;

/* Summarizes items[0..n). Errors: FX_ERR_INVALID_ARGUMENT (NULL, n == 0,
 * n over 2^32 - 1, struct_size too small). */
FX_API fx_status fx_faithfulness_summarize(const fx_faithfulness *items, size_t n,
                                           fx_faithfulness_summary *out);

/* ---- Warnings -------------------------------------------------------------
 * The library prints nothing. What does not stop a call but makes its answer
 * questionable travels with the object it concerns, as a stable code and a
 * message that says what was seen and what to do. The CLI prints them on
 * stderr, Python raises them with warnings.warn. Strings are owned by the
 * model/result. Codes are pinned, only appended. */
#define FX_WARN_TRAINING_MODE 1   /* model: exported in training mode (fxcam evaluates it in eval
                                   * mode), or two forwards of one input differ; says to call
                                   * model.eval() before torch.jit.trace/script */
#define FX_WARN_OUTPUT_KIND 2     /* model: output kind guessed from the probe's values, or fxcam.json
                                   * contradicts the graph; result: outputs taken as probabilities
                                   * lie outside [0,1] */
#define FX_WARN_LAYER_1X1 3       /* reserved: 1x1 layers are refused (FX_ERR_LAYER), never warned */
#define FX_WARN_ZERO_MAP 4        /* result: a method's low-resolution map is all zero after ReLU: the
                                   * target score gets no positive evidence from this layer */
#define FX_WARN_UPSCALE 5         /* result: image upscaled more than 4x (either axis) to the model input */
#define FX_WARN_DOWNSCALE 6       /* result: image downscaled more than 16x (either axis) without
                                   * antialiasing (FX_RESIZE_STRETCH) */
#define FX_WARN_NOT_SEEN 7        /* result: with FX_RESIZE_SHORTER_SIDE_CROP the model saw only part of
                                   * the image; the heatmap is 0 outside it (fx_result_seen_region) */
#define FX_WARN_CLIPPED 8         /* result: samples above 2^bits - 1 (FX_INTENSITY_BITS) or outside the
                                   * window were clipped to 1 (or 0) */
#define FX_WARN_NARROW_RANGE 9    /* result: a 16-bit image with no known bit depth whose samples all fit
                                   * in 12 bits is read as v / 65535 (dark, low contrast): 12-bit data
                                   * stored without a PNG sBIT chunk; set bits_stored if it is */

/* The part of image i the model saw, in the image's pixels: the whole image
 * except with FX_RESIZE_SHORTER_SIDE_CROP, where it is the cropped rectangle
 * [x, x + width) x [y, y + height); the heatmap is 0 outside it. Any out
 * pointer may be NULL. Errors: FX_ERR_INVALID_ARGUMENT (NULL result, i out of
 * range). */
FX_API fx_status fx_result_seen_region(const fx_result *result, size_t i, uint32_t *x, uint32_t *y,
                                       uint32_t *width, uint32_t *height);
/* The model's intensity rule after load (options over fxcam.json over the
 * defaults), for showing images as the model sees them; rule->struct_size must
 * be set. Errors: FX_ERR_INVALID_ARGUMENT. */
FX_API fx_status fx_model_intensity(const fx_model *model, fx_intensity *rule);
/* The model's resize mode (FX_RESIZE_STRETCH .. _SHORTER_SIDE_CROP, never
 * _DEFAULT) and, for the crop mode, the shorter side (*size may be NULL; 0 for
 * the other modes). -1 for NULL. */
FX_API int32_t fx_model_resize_mode(const fx_model *model, uint32_t *size);

/* What the model's output holds after load (FX_OUTPUT_LOGITS or
 * FX_OUTPUT_PROBABILITIES); FX_OUTPUT_AUTO for NULL. */
FX_API int32_t fx_model_output_kind(const fx_model *model);
/* Warnings raised while loading the model. */
FX_API size_t fx_model_warning_count(const fx_model *model);
/* Message of warning index (NULL when out of range); *code (may be NULL)
 * receives its FX_WARN_* code. */
FX_API const char *fx_model_warning(const fx_model *model, size_t index, int32_t *code);
/* Warnings raised by the call that made the result, in the order raised
 * (one FX_WARN_ZERO_MAP per image and method). */
FX_API size_t fx_result_warning_count(const fx_result *result);
/* As fx_model_warning(); *image (may be NULL) receives the image index the
 * warning concerns, or -1 when it concerns the whole call. */
FX_API const char *fx_result_warning(const fx_result *result, size_t index, int32_t *code,
                                     int64_t *image);

/* ---- Pipelined batches over files (0.2) ----------------------------------
 * fx_pipeline_run reads and decodes the next pass's images and hands the
 * previous pass's results to the caller while the model runs the current
 * pass (three stages, as `fxcam batch --io-threads 1`), in input order, with
 * memory bounded by four passes whatever the number of files. */

/* One image's outcome, valid only during the callback (copy what you keep). */
typedef struct fx_pipeline_item {
    uint32_t struct_size;       /* sizeof(fx_pipeline_item) of the library; check before newer fields */
    size_t index;               /* position in paths[] (items come in this order: 0, 1, 2, ...) */
    const char *path;           /* paths[index] */
    fx_status status;           /* FX_OK, or why this image has no result (read or compute error) */
    const char *error;          /* the message for that status ("" when FX_OK); never NULL */
    const fx_image *image;      /* the decoded image (NULL when it could not be read) */
    const fx_image_info *info;  /* what the loader found out (bits stored); NULL with image */
    const fx_result *result;    /* the pass's result (NULL unless FX_OK) ... */
    size_t result_index;        /* ... and this image's index i in it (fx_result_heatmap(result, i, j)) */
} fx_pipeline_item;

/* Called once per path, in input order, from one thread at a time (with
 * io_threads 1 a thread of the pipeline, not the caller's). Return 0 to go
 * on, nonzero to stop: no more images are read, the passes in flight are
 * dropped without callbacks, and fx_pipeline_run returns FX_ERR_CANCELLED. */
typedef int32_t (*fx_pipeline_fn)(void *user, const fx_pipeline_item *item);

typedef struct fx_pipeline_options {
    uint32_t struct_size;       /* sizeof(fx_pipeline_options) */
    uint32_t batch_size;        /* images per pass, 1..4096; default 8 */
    uint64_t batch_memory;      /* a pass ends once its decoded bytes reach this (so it holds at most
                                 * this plus one image); default 1 GiB; at most 4 passes are alive */
    uint32_t io_threads;        /* 0: read, compute, callback one after another on the calling
                                 * thread; 1 (default): reading and callbacks on two threads beside
                                 * the model's pass */
    const fx_gradcam_options *gradcam; /* NULL = defaults; its image_info is set per pass */
    const fx_load_options *load;       /* NULL = defaults; its info is set per image */
} fx_pipeline_options;

FX_API void fx_pipeline_options_init(fx_pipeline_options *opts);

/* Explains paths[0..n) with model in passes of opts->batch_size images and
 * calls callback for each path in input order. An image that cannot be read,
 * or whose pass fails for a reason of its own (the pass is then retried one
 * image at a time), is an item with its status and message, and the run goes
 * on. Returns FX_OK when every item was delivered; FX_ERR_CANCELLED when the
 * callback stopped it; FX_ERR_LAYER, FX_ERR_DEVICE or FX_ERR_NOT_AVAILABLE
 * (the error that every image would have; items before it were delivered,
 * none after); FX_ERR_INVALID_ARGUMENT (NULL model/callback, NULL paths with
 * n > 0, bad options); FX_ERR_OUT_OF_MEMORY. The model must not be used by
 * another thread during the call. */
FX_API fx_status fx_pipeline_run(fx_model *model, const char *const *paths, size_t n,
                                 const fx_pipeline_options *opts, fx_pipeline_fn callback, void *user);

#ifdef __cplusplus
}
#endif

#endif /* FXCAM_H */
