// C interface to OpenCV's FaceDetectorYN, FaceRecognizerSF and
// face::LBPHFaceRecognizer. Every call catches C++ exceptions and returns
// a malloc'd message in *err (NULL on success).
#ifndef WARDEN_FACECV_H
#define WARDEN_FACECV_H
#ifdef __cplusplus
extern "C" {
#endif

typedef void* FCMat; // cv::Mat*, as in gocv

typedef struct FCYuNet FCYuNet;
typedef struct FCSFace FCSFace;
typedef struct FCLBPH FCLBPH;

FCYuNet* fc_yunet_new(const char* model, float score, float nms, char** err);
// fc_yunet_detect writes up to max rows of 15 floats (x,y,w,h, 5 landmarks, score).
int fc_yunet_detect(FCYuNet* d, FCMat img, float* out, int max, char** err);
void fc_yunet_free(FCYuNet* d);

// fc_sface_new loads an embedding model. scale <= 0 uses FaceRecognizerSF's
// own input (raw 0..255 RGB, as SFace wants); otherwise the crop is fed as
// (pixel - mean) * scale, RGB when swap_rb.
FCSFace* fc_sface_new(const char* model, double scale, double mean, int swap_rb, char** err);
// fc_sface_align writes a 112x112 BGR crop (112*112*3 bytes) for row (15 floats).
int fc_sface_align(FCSFace* r, FCMat img, const float* row, unsigned char* crop, char** err);
// fc_sface_feature embeds a 112x112 BGR crop; returns the dimension written (<= max).
int fc_sface_feature(FCSFace* r, const unsigned char* crop, float* out, int max, char** err);
void fc_sface_free(FCSFace* r);

FCLBPH* fc_lbph_new(char** err);
// fc_lbph_train replaces the model: n grey images of w*h bytes each, back to back.
int fc_lbph_train(FCLBPH* l, const unsigned char* data, int n, int w, int h, const int* labels, char** err);
int fc_lbph_predict(FCLBPH* l, const unsigned char* grey, int w, int h, int* label, double* dist, char** err);
void fc_lbph_free(FCLBPH* l);

// fc_set_num_threads sets OpenCV's worker threads (cv::setNumThreads).
void fc_set_num_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
