/* DICOM input through DCMTK (see dicom_reader.h for the pipeline and the
 * output). The one C++ file of the image formats: every entry point is
 * noexcept and catches everything; messages go through fx__error. */
#include "dicom_reader.h"

extern "C" {
#include "image_formats.h"
}

#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdict.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcrledrg.h"
#include "dcmtk/dcmdata/dcuid.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/dcmdata/dccodec.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmimage/diregist.h" /* color images (RGB, YBR, palette) */
#include "dcmtk/dcmimgle/dcmimage.h"
#include "dcmtk/dcmjpeg/djdecode.h"
#include "dcmtk/dcmjpls/djdecode.h"
#include "dcmtk/oflog/oflog.h"

#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <new>
#include <string>

namespace {

/* Elements longer than this stay in the file until the pixel data is needed,
 * so a file's declared size is checked before its pixels are read. */
constexpr Uint32 kLazyLoadBytes = 64 * 1024;

/* DCMTK's decoders are registered once per process, in a thread-safe way;
 * its logger, which writes to stderr by default, is silenced at the same
 * time (the library prints nothing). */
void register_decoders_once()
{
    static std::once_flag once;
    std::call_once(once, [] {
        OFLog::configure(OFLogger::OFF_LOG_LEVEL);
        DJDecoderRegistration::registerCodecs();
        DJLSDecoderRegistration::registerCodecs();
        DcmRLEDecoderRegistration::registerCodecs();
    });
}

struct Geometry {
    Uint16 rows = 0, columns = 0, samples = 1, bits_allocated = 0, bits_stored = 0;
    Sint32 frames = 1;
    OFString photometric;
};

std::string sop_class_text(DcmDataset *ds)
{
    OFString uid, modality;
    std::string text;
    if (ds->findAndGetOFString(DCM_SOPClassUID, uid).good() && !uid.empty()) {
        const char *name = dcmFindNameOfUID(uid.c_str());
        text = std::string("SOP class ") + (name ? name : uid.c_str());
    }
    if (ds->findAndGetOFString(DCM_Modality, modality).good() && !modality.empty())
        text += (text.empty() ? "" : ", ") + std::string("modality ") + modality.c_str();
    return text.empty() ? std::string("no SOP class or modality given") : text;
}

fx_status check_is_image(DcmDataset *ds, const char *label)
{
    if (ds->tagExists(DCM_PixelData))
        return FX_OK;
    if (ds->tagExists(DCM_FloatPixelData) || ds->tagExists(DCM_DoubleFloatPixelData))
        return fx__error(FX_ERR_UNSUPPORTED,
                         "%s holds float pixel data (Float/Double Float Pixel Data), which fxcam does not read; "
                         "it reads integer Pixel Data (7FE0,0010)",
                         label);
    return fx__error(FX_ERR_FORMAT,
                     "%s is a DICOM file without pixel data (%s): it is not an image (structured reports, RT "
                     "structure sets and presentation states are not); give fxcam the image series",
                     label, sop_class_text(ds).c_str());
}

fx_status read_geometry(DcmDataset *ds, const char *label, Geometry *g)
{
    struct Required {
        const DcmTagKey &tag;
        const char *name;
        Uint16 *value;
    } required[] = {{DCM_Rows, "Rows (0028,0010)", &g->rows},
                    {DCM_Columns, "Columns (0028,0011)", &g->columns},
                    {DCM_BitsAllocated, "BitsAllocated (0028,0100)", &g->bits_allocated},
                    {DCM_BitsStored, "BitsStored (0028,0101)", &g->bits_stored}};
    for (const Required &r : required)
        if (ds->findAndGetUint16(r.tag, *r.value).bad())
            return fx__error(FX_ERR_FORMAT, "%s: the image attribute %s is missing or unreadable", label, r.name);
    if (ds->findAndGetUint16(DCM_SamplesPerPixel, g->samples).bad())
        g->samples = 1;
    if (ds->findAndGetSint32(DCM_NumberOfFrames, g->frames).bad())
        g->frames = 1;
    ds->findAndGetOFString(DCM_PhotometricInterpretation, g->photometric);

    if (g->rows == 0 || g->columns == 0)
        return fx__error(FX_ERR_FORMAT, "%s declares an empty image: Rows %u, Columns %u (both must be >= 1)", label,
                         g->rows, g->columns);
    if (g->bits_allocated != 1 && g->bits_allocated != 8 && g->bits_allocated != 16 && g->bits_allocated != 32)
        return fx__error(FX_ERR_FORMAT, "%s: BitsAllocated is %u; valid: 1, 8, 16 or 32", label, g->bits_allocated);
    if (g->bits_stored == 0 || g->bits_stored > g->bits_allocated)
        return fx__error(FX_ERR_FORMAT,
                         "%s: BitsStored %u contradicts BitsAllocated %u (BitsStored must be 1..BitsAllocated)",
                         label, g->bits_stored, g->bits_allocated);
    if (g->samples != 1 && g->samples != 3)
        return fx__error(FX_ERR_FORMAT, "%s: SamplesPerPixel is %u; valid: 1 (gray or palette) or 3 (color)", label,
                         g->samples);
    if (g->frames < 1)
        return fx__error(FX_ERR_FORMAT, "%s: NumberOfFrames is %d; it must be >= 1", label, (int)g->frames);
    return FX_OK;
}

fx_status check_request(const Geometry &g, const char *label, const fx_load_options *limits)
{
    fx_status st = fx__load_limits_check(label, g.columns, g.rows, limits);
    if (st != FX_OK)
        return st;
    if (limits->frame >= (uint32_t)g.frames)
        return fx__error(FX_ERR_INVALID_ARGUMENT, "%s: fx_load_options.frame is %u, but the file has %d frame%s "
                         "(valid: 0..%d)", label, limits->frame, (int)g.frames, g.frames == 1 ? "" : "s",
                         (int)g.frames - 1);
    return FX_OK;
}

fx_status check_transfer_syntax(DcmDataset *ds, const char *label, E_TransferSyntax *xfer_out)
{
    E_TransferSyntax xfer = ds->getOriginalXfer();
    DcmXfer x(xfer);
    *xfer_out = xfer;
    if (!x.isEncapsulated())
        return FX_OK;
    if (DcmCodecList::canChangeCoding(xfer, EXS_LittleEndianExplicit))
        return FX_OK;
    return fx__error(FX_ERR_UNSUPPORTED,
                     "%s is compressed with the transfer syntax '%s' (%s), which this fxcam cannot decode (DCMTK "
                     "decoders here: JPEG, JPEG-LS, RLE); convert it, e.g. with gdcmconv --raw or pydicom's "
                     "decompress(), then load the result",
                     label, x.getXferName(), x.getXferID());
}

/* Uncompressed pixel data shorter than the attributes declare would be padded
 * with zeros by DCMTK (with only a log message); refuse it instead. */
fx_status check_pixel_length(DcmDataset *ds, const Geometry &g, E_TransferSyntax xfer, const char *label)
{
    if (DcmXfer(xfer).isEncapsulated())
        return FX_OK; /* the decoder reports missing fragments */
    DcmElement *pixels = nullptr;
    if (ds->findAndGetElement(DCM_PixelData, pixels).bad() || !pixels)
        return fx__error(FX_ERR_FORMAT, "%s: Pixel Data (7FE0,0010) cannot be read", label);
    /* YBR_FULL_422 / YBR_PARTIAL_422 store two samples per pixel, Y Y Cb Cr
     * for each pair of pixels (PS3.3 C.7.6.3.1.2), when not compressed. */
    bool subsampled = g.samples == 3 && (g.photometric == "YBR_FULL_422" || g.photometric == "YBR_PARTIAL_422");
    uint64_t samples = subsampled ? 2 : g.samples;
    uint64_t bits = (uint64_t)g.rows * g.columns * samples * (uint64_t)g.frames * g.bits_allocated;
    uint64_t needed = (bits + 7) / 8;
    uint64_t have = pixels->getLength();
    if (have < needed)
        return fx__error(FX_ERR_FORMAT,
                         "%s: Pixel Data holds %llu bytes, but Rows %u x Columns %u x %s %u x "
                         "NumberOfFrames %d x BitsAllocated %u need %llu: the file is truncated or its attributes "
                         "are wrong",
                         label, (unsigned long long)have, g.rows, g.columns,
                         subsampled ? "samples per pixel of 4:2:2 YBR" : "SamplesPerPixel", (unsigned)samples,
                         (int)g.frames, g.bits_allocated, (unsigned long long)needed);
    return FX_OK;
}

fx_status check_window(DcmDataset *ds, const char *label)
{
    Float64 width = 0;
    if (ds->findAndGetFloat64(DCM_WindowWidth, width, 0).bad())
        return FX_OK;
    if (!std::isfinite(width) || width < 1.0)
        return fx__error(FX_ERR_FORMAT,
                         "%s: Window Width is %g; DICOM requires >= 1 (PS3.3 C.11.2.1.2). Fix the file's "
                         "Window Width (0028,1051) or remove it to window by the image's minimum and maximum",
                         label, width);
    return FX_OK;
}

/* Value pos of the LUT Descriptor, whose VR is US or SS (US or SS by Pixel
 * Representation, PS3.3 C.11.2.1.1); the entry count and bits are 16-bit
 * unsigned either way. */
bool descriptor_value(DcmItem *item, unsigned long pos, Uint16 *value)
{
    if (item->findAndGetUint16(DCM_LUTDescriptor, *value, pos).good())
        return true;
    Sint16 signed_value = 0;
    if (item->findAndGetSint16(DCM_LUTDescriptor, signed_value, pos).bad())
        return false;
    *value = (Uint16)signed_value;
    return true;
}

/* The first item of the VOI LUT Sequence, checked before DCMTK sees it:
 * DCMTK accepts a LUT Data shorter than its descriptor with only a log
 * message. bits: entry bits of the LUT (0 when the file has no VOI LUT). */
fx_status check_voi_lut(DcmDataset *ds, const char *label, int *bits)
{
    *bits = 0;
    DcmItem *item = nullptr;
    if (ds->findAndGetSequenceItem(DCM_VOILUTSequence, item, 0).bad() || !item)
        return FX_OK; /* no VOI LUT (an empty sequence counts as none, like DCMTK) */
    Uint16 declared = 0, entry_bits = 0;
    if (!descriptor_value(item, 0, &declared) || !descriptor_value(item, 2, &entry_bits))
        return fx__error(FX_ERR_FORMAT,
                         "%s: the VOI LUT Sequence (0028,3010) item has no readable LUT Descriptor (0028,3002) "
                         "of 3 values (entries, first mapped value, bits per entry)",
                         label);
    const unsigned long entries = declared == 0 ? 65536ul : declared; /* 0 means 2^16 (PS3.3 C.11.2.1.1) */
    if (entry_bits < 8 || entry_bits > 16)
        return fx__error(FX_ERR_FORMAT,
                         "%s: the VOI LUT's LUT Descriptor (0028,3002) gives %u bits per entry; valid: 8..16 "
                         "(PS3.3 C.11.2.1.1)",
                         label, entry_bits);
    DcmElement *data = nullptr;
    if (item->findAndGetElement(DCM_LUTData, data).bad() || !data || data->getLength() == 0)
        return fx__error(FX_ERR_FORMAT,
                         "%s: the VOI LUT has no LUT Data (0028,3006) (0 entries); its LUT Descriptor "
                         "(0028,3002) declares %lu. Fix the VOI LUT Sequence (0028,3010) or remove it to use the "
                         "window",
                         label, entries);
    /* Entries are 16-bit words; 8-bit entries may also be packed two a word. */
    const unsigned long words = data->getLength() / 2;
    const bool packed8 = entry_bits == 8 && words == (entries + 1) / 2;
    if (words > 65536ul)
        return fx__error(FX_ERR_FORMAT,
                         "%s: the VOI LUT's LUT Data (0028,3006) holds %lu entries; a LUT holds at most 65536 "
                         "(PS3.3 C.11.2.1.1)",
                         label, words);
    if (words != entries && !packed8)
        return fx__error(FX_ERR_FORMAT,
                         "%s: the VOI LUT's LUT Descriptor (0028,3002) declares %lu entries, but its LUT Data "
                         "(0028,3006) holds %lu: the VOI LUT Sequence (0028,3010) contradicts itself",
                         label, entries, words);
    Uint16 *values = nullptr;
    if (!packed8 && entry_bits < 16 && data->getUint16Array(values).good() && values) {
        Uint16 largest = 0;
        for (unsigned long i = 0; i < words; i++)
            largest = values[i] > largest ? values[i] : largest;
        if (largest > (1u << entry_bits) - 1u)
            return fx__error(FX_ERR_FORMAT,
                             "%s: the VOI LUT's LUT Data (0028,3006) holds the value %u, but its LUT Descriptor "
                             "(0028,3002) gives %u bits per entry (at most %u)",
                             label, largest, entry_bits, (1u << entry_bits) - 1u);
    }
    *bits = packed8 ? 8 : entry_bits;
    return FX_OK;
}

/* VOI of gray images: the first VOI LUT, else the first window, else the
 * minimum..maximum of the modality values (dicom_reader.h). */
fx_status choose_voi(DicomImage &image, const char *label)
{
    bool ok;
    if (image.getVoiLutCount() > 0)
        ok = image.setVoiLut(0) != 0;
    else if (image.getWindowCount() > 0)
        ok = image.setWindow(0) != 0;
    else
        ok = image.setMinMaxWindow(0) != 0;
    if (!ok)
        return fx__error(FX_ERR_FORMAT, "%s: DCMTK cannot apply the file's VOI LUT or window", label);
    return FX_OK;
}

/* DCMTK scales n-bit VOI LUT entries e (n < 16) onto its 16-bit output by
 * about e * 65535 / 2^n (an entry of 4095 gives 65519), then inverts
 * MONOCHROME1. PS3.4 N.2.4.1 maps the LUT's range 0..2^n-1 onto the whole
 * output, as pydicom does. The entry is recovered exactly (16 output levels
 * per entry, DCMTK's rounding moves less than one) and rescaled:
 * round(e * 65535 / (2^n - 1)). 16-bit entries pass through unchanged. */
void rescale_voi_lut_output(uint16_t *pixels, size_t count, int bits, bool inverted)
{
    const uint64_t entries = 1ull << bits, top = entries - 1;
    for (size_t i = 0; i < count; i++) {
        uint64_t v = inverted ? 65535u - pixels[i] : pixels[i];
        uint64_t e = (v * entries + 32767u) / 65535u;
        e = e > top ? top : e;
        uint64_t out = (e * 65535u + top / 2) / top;
        pixels[i] = (uint16_t)(inverted ? 65535u - out : out);
    }
}

/* Whether DCMTK's output is inverted: MONOCHROME1, unless a Presentation LUT
 * Shape INVERSE inverts it back; MONOCHROME2 with INVERSE. */
bool output_inverted(DicomImage &image)
{
    bool mono1 = image.getPhotometricInterpretation() == EPI_Monochrome1;
    bool inverse_shape = image.getPresentationLutShape() == ESP_Inverse;
    return mono1 != inverse_shape;
}

/* Gray: FX_PIXEL_U16 spanning 0..65535 (voi_lut_bits: entry bits of the VOI
 * LUT applied, else 0); color: FX_PIXEL_U8 RGB. */
fx_status copy_output(DicomImage &image, const char *label, bool gray, int voi_lut_bits, fx_image *out)
{
    const int bits = gray ? 16 : 8;
    const void *pixels = image.getOutputData(bits, 0, 0);
    uint32_t width = (uint32_t)image.getWidth(), height = (uint32_t)image.getHeight();
    uint32_t channels = gray ? 1 : 3;
    int32_t type = gray ? FX_PIXEL_U16 : FX_PIXEL_U8;
    size_t count = (size_t)width * height * channels;
    size_t rendered = count * (size_t)(bits / 8);
    if (!pixels)
        return fx__error(FX_ERR_FORMAT, "%s: DCMTK could not render the pixel data (%s)", label,
                         DicomImage::getString(image.getStatus()));
    if (image.getOutputDataSize(bits) != rendered)
        return fx__error(FX_ERR_INTERNAL, "%s: DCMTK rendered %lu bytes; %ux%u x %u channels x %d bits need %zu",
                         label, image.getOutputDataSize(bits), width, height, channels, bits, rendered);
    fx_image img = {};
    fx_status st = fx_image_alloc(&img, width, height, channels, type);
    if (st != FX_OK)
        return st;
    std::memcpy(img.data, pixels, rendered); /* tight rows, host byte order */
    if (gray && voi_lut_bits > 0 && voi_lut_bits < 16)
        rescale_voi_lut_output((uint16_t *)img.data, count, voi_lut_bits, output_inverted(image));
    *out = img;
    return FX_OK;
}

fx_status render(DcmFileFormat &file, E_TransferSyntax xfer, const Geometry &g, int voi_lut_bits,
                 const char *label, const fx_load_options *limits, fx_image *out)
{
    /* Partial access: only the requested frame is loaded and decompressed,
     * so a compressed file declaring thousands of frames costs one frame. */
    DicomImage image(&file, xfer, CIF_UsePartialAccessToPixelData, limits->frame, 1);
    EI_Status status = image.getStatus();
    if (status != EIS_Normal)
        return fx__error(status == EIS_NotSupportedValue ? FX_ERR_UNSUPPORTED : FX_ERR_FORMAT,
                         "%s: DCMTK cannot interpret the image (%s; PhotometricInterpretation '%s', BitsAllocated "
                         "%u, BitsStored %u, SamplesPerPixel %u)",
                         label, DicomImage::getString(status), g.photometric.c_str(), g.bits_allocated,
                         g.bits_stored, g.samples);
    bool gray = image.isMonochrome() != 0;
    if (gray) {
        fx_status st = choose_voi(image, label);
        if (st != FX_OK)
            return st;
    }
    /* choose_voi takes a VOI LUT first: its bits say how to rescale. */
    return copy_output(image, label, gray, gray && image.getVoiLutCount() > 0 ? voi_lut_bits : 0, out);
}

fx_status read_file(DcmFileFormat &file, const char *path, const void *data, size_t size, const char *label)
{
    OFCondition cond;
    if (path) {
        cond = file.loadFile(path, EXS_Unknown, EGL_noChange, kLazyLoadBytes, ERM_autoDetect);
    } else {
        DcmInputBufferStream stream;
        stream.setBuffer(data, (offile_off_t)size);
        stream.setEos();
        file.transferInit();
        cond = file.read(stream, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
        file.transferEnd();
    }
    if (cond.good())
        return FX_OK;
    /* The file was opened and its first bytes read moments ago
     * (lib/image_load.c), so a failure here is the content: DCMTK says
     * "Invalid stream" when the data ends inside an element. Without the
     * Part 10 header, DCMTK guesses the transfer syntax (EXS_Unknown). */
    return fx__error(FX_ERR_FORMAT, "%s cannot be parsed as DICOM: the file is truncated or damaged (DCMTK: %s)",
                     label, cond.text());
}

fx_status load(const char *path, const void *data, size_t size, const char *label, const fx_load_options *limits,
               fx_image *out)
{
    register_decoders_once();
    if (!dcmDataDict.isDictionaryLoaded())
        return fx__error(FX_ERR_NOT_AVAILABLE,
                         "%s: DCMTK's data dictionary is not loaded (looked in DCMDICTPATH or %s); install DCMTK's "
                         "data files (Debian: libdcmtk17's /usr/share/libdcmtk17/dicom.dic)",
                         label, DCM_DICT_DEFAULT_PATH);
    DcmFileFormat file;
    fx_status st = read_file(file, path, data, size, label);
    if (st != FX_OK)
        return st;
    DcmDataset *ds = file.getDataset();
    Geometry g;
    E_TransferSyntax xfer = EXS_Unknown;
    if ((st = check_is_image(ds, label)) != FX_OK || (st = read_geometry(ds, label, &g)) != FX_OK ||
        (st = check_request(g, label, limits)) != FX_OK || (st = check_transfer_syntax(ds, label, &xfer)) != FX_OK ||
        (st = check_pixel_length(ds, g, xfer, label)) != FX_OK || (st = check_window(ds, label)) != FX_OK)
        return st;
    int voi_lut_bits = 0;
    if ((st = check_voi_lut(ds, label, &voi_lut_bits)) != FX_OK)
        return st;
    return render(file, xfer, g, voi_lut_bits, label, limits, out);
}

} // namespace

extern "C" fx_status fx__dicom_load(const char *path, const void *data, size_t size, const char *label,
                                    const fx_load_options *limits, fx_image *out) noexcept
{
    try {
        return load(path, data, size, label, limits, out);
    } catch (const std::bad_alloc &) {
        return fx__error(FX_ERR_OUT_OF_MEMORY, "%s: out of memory while reading the DICOM file", label);
    } catch (const std::exception &e) {
        return fx__error(FX_ERR_FORMAT, "%s: DCMTK failed: %s", label, e.what());
    } catch (...) {
        return fx__error(FX_ERR_INTERNAL, "%s: DCMTK failed with an unknown exception", label);
    }
}
