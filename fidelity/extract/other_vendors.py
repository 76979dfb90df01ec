import csv, json, re, subprocess
OUT='/tmp/fidelity-source.csv'
HDR=['chip','model','architecture','input_shape','precision','runtime','measure','batch','value','unit','compute_unit','npu_layers','total_layers','source','commit','note']
rows=[]
def add(**k):
    r={h:'' for h in HDR}; r.update({a:str(b) for a,b in k.items()}); rows.append(r)

# ---------------- Coral Edge TPU ----------------
CURL='https://coral.ai/docs/edgetpu/benchmarks/'
coral=[
 ('Unet Mv2 (128x128)','unet',128,128,27.7,3.3,190.7,5.7,'U-Net with MobileNetV2 encoder'),
 ('DeepLab V3 (513x513)','',513,513,394,52,1139,241,'backbone not named in captured page text'),
 ('DenseNet (224x224)','',224,224,380,20,1032,25,'DenseNet depth not named'),
 ('Inception v1 (224x224)','inception_v1',224,224,90,3.4,392,4.1,''),
 ('Inception v4 (299x299)','inception_v4',299,299,700,85,3157,102,''),
 ('Inception-ResNet V2 (299x299)','inception_resnet_v2',299,299,753,57,2852,69,''),
 ('MobileNet v1 (224x224)','mobilenet_v1',224,224,53,2.4,164,2.4,''),
 ('MobileNet v2 (224x224)','mobilenet_v2',224,224,51,2.6,122,2.6,''),
 ('MobileNet v1 SSD (224x224)','ssd_mobilenet_v1',224,224,109,6.5,353,11,'input size as printed on the page (224x224)'),
 ('MobileNet v2 SSD (224x224)','ssd_mobilenet_v2',224,224,106,7.2,282,14,'input size as printed on the page (224x224)'),
 ('ResNet-50 V1 (299x299)','resnet50',299,299,484,49,1763,56,'ResNet-50 V1 at 299x299 as printed'),
 ('ResNet-50 V2 (299x299)','resnet50_v2',299,299,557,50,1875,59,''),
 ('ResNet-152 V2 (299x299)','resnet152_v2',299,299,1823,128,5499,151,''),
 ('SqueezeNet (224x224)','squeezenet',224,224,55,2.1,232,2,''),
 ('VGG16 (224x224)','vgg16',224,224,867,296,4595,343,''),
 ('VGG19 (224x224)','vgg19',224,224,1060,308,5538,357,''),
 ('EfficientNet-EdgeTpu-S','efficientnet_edgetpu_s',224,224,5431,5.1,705,5.5,'page marks this model with * (footnote text not captured); input 224 from EfficientNet-EdgeTPU-S definition, not printed on page'),
 ('EfficientNet-EdgeTpu-M','efficientnet_edgetpu_m',240,240,8469,8.7,1081,10.6,'page marks this model with * (footnote text not captured); input 240 from EfficientNet-EdgeTPU-M definition, not printed on page'),
]
base='Coral "Table 1. Time per inference, in milliseconds"; TFLite models, C++ benchmark, model execution only (no input preprocessing); 8-bit quantized for Edge TPU but int8/uint8 not stated; batch not stated (single inference)'
for m,a,h,w,dcpu,usb,ecpu,dev,extra in coral:
    shp=f'1x3x{h}x{w}'
    x=('; '+extra) if extra else ''
    add(chip='edgetpu',model=m,architecture=a,input_shape=shp,runtime='tflite',measure='latency',batch=1,value=dev,unit='ms',compute_unit='TPU',source=CURL,commit='-',note=f'column "Dev Board with Edge TPU"; edgetpu delegate; {base}{x}')
    add(chip='coral-usb',model=m,architecture=a,input_shape=shp,runtime='tflite',measure='latency',batch=1,value=usb,unit='ms',compute_unit='TPU',source=CURL,commit='-',note=f'column "Desktop CPU + USB Accelerator (USB 3.0) with Edge TPU"; edgetpu delegate; {base}{x}')
    add(chip='coral-usb',model=m,architecture=a,input_shape=shp,runtime='tflite',measure='latency',batch=1,value=dcpu,unit='ms',compute_unit='CPU',source=CURL,commit='-',note=f'column "Desktop CPU" (host CPU alone, no Edge TPU; CPU model in footnote 1, not captured); {base}{x}')
    add(chip='edgetpu',model=m,architecture=a,input_shape=shp,runtime='tflite',measure='latency',batch=1,value=ecpu,unit='ms',compute_unit='CPU',source=CURL,commit='-',note=f'column "Embedded CPU" (CPU alone, no Edge TPU; CPU model in footnote 2, not captured); {base}{x}')

# ---------------- NXP i.MX 8M Plus ----------------
G='/work/.mirror/NXP+eiq-model-zoo/repo'; C='58c2b002e9f64f39b8c43e896e00446298544a33'
def git(*a): return subprocess.run(['git','--git-dir='+G,*a],capture_output=True,text=True).stdout
files=[f for f in git('ls-tree','-r','--name-only',C).split('\n') if re.match(r'^tasks/.+/README.md$',f) and f.count('/')>=3]
meta={ # dir: (model, arch, shape, note)
 'deep-autoencoder':('Deep AutoEncoder (ad01_int8.tflite)','','1x640','audio anomaly detection; shape as stated (1, 640)'),
 'keyword-spotting_DSCNN':('DS CNN keyword spotting (kws_ref_model.tflite)','','1x49x10x1','shape as stated [1, 49, 10, 1] (MFCC features, not an image)'),
 'micro-speech-LSTM':('Microspeech LSTM (microspeech-lstm_quant_int8.tflite)','','1x49x257','shape as stated (1, 49, 257)'),
 'wav2letter':('Tiny Wav2Letter (tiny_wav2letter_int8.tflite)','','1x296x39','shape as stated (1, 296, 39); NPU slower than CPU in source'),
 'eegTCNet':('EEG-TCNet (eegTCNet_quant_int8.tflite)','','1x1x22x1125','shape as stated (1, 1, 22, 1125); NPU row is "-" in source (not accelerated on i.MX 8M Plus NPU as of BSP LF6.1.36_2.1.0)'),
 'MNasNet':('MnasNet-A1 0.75 (mnasnet-a1-075_quant_int8.tflite)','','1x3x224x224',''),
 'deepface-emotion':('Deepface-emotion (emotion_uint8_float32.tflite)','','1x1x48x48','grayscale 48x48; file name says uint8 though table says Int8'),
 'efficientnet-lite':('EfficientNet-Lite0 (efficientnet-lite0-int8.tflite)','efficientnet_lite0','1x3x224x224',''),
 'mobilenetv1':('MobileNet V1 0.25 128 (mobilenet_v1_0.25_128_quant.tflite)','mobilenet_v1','1x3x128x128','width multiplier 0.25'),
 'mobilenetv2':('MobileNet V2 (mobilenet_v2_quant_int8.tflite)','mobilenet_v2','1x3x224x224',''),
 'resnet':('ResNet50 (resnet50_int8.tflite)','resnet50','1x3x224x224',''),
 'tiny-resnet':('Tiny ResNet CIFAR-10 (pretrainedResnet_quant.tflite)','','1x3x32x32',''),
 'visual-wake-word':('Visual Wake Word MobileNet V1 (vww)','','1x3x96x96','MobileNet V1 backbone'),
 'facenet512':('FaceNet512 (facenet512_uint8.tflite)','','1x3x160x160','file name says uint8 though table says Int8'),
 'YOLACT-Edge':('YOLACT-Edge (YOLACT-Edge.tflite)','','1x3x550x550','source gives seconds (7.29s / 2.19s) for CPU rows, converted to ms'),
 'midas':('MiDaS v2.1 small (midas_2_1_small_int8.tflite)','','1x3x256x256',''),
 'centernet':('CenterNet (centernet.tflite)','','1x3x512x512',''),
 'faceDet':('FaceDet YOLO face (yolo_face_detect.tflite)','','1x3x128x160','source gives (160, 128, 3); output grid (4,5) implies H=128 W=160'),
 'nanodet-m':('NanoDet-M 0.5x (nanodet_m_0.5x.tflite)','','1x3x320x320',''),
 'ssdlite-mobilenetv2':('SSDLite MobileNetV2 (ssdlite-mobilenetv2.tflite)','ssdlite_mobilenet_v2','1x3x300x300',''),
 'ultraface-slim':('Ultraface-Slim (ultraface_slim_uint8_float32.tflite)','','1x3x240x320','source gives (320, 240, 3), read as W=320 H=240; file name says uint8'),
 'yolov4tiny':('YOLOv4-tiny 416 (yolov4-tiny_416_quant.tflite)','','1x3x416x416',''),
 'yolov8':('YOLOv8n (yolov8n_full_integer_quant.tflite)','yolov8n','1x3x640x640',''),
 'movenet':('MoveNet Lightning (movenet.tflite)','','1x3x192x192','no NPU row in source' ),
 'whenet':('WHENet (whenet.tflite)','','1x3x224x224','no i.MX 8M Plus NPU row in source'),
 'deeplabv3':('DeepLabV3 MobileNetV2 dm0.5 (deeplabv3.tflite)','deeplabv3_mobilenet_v2','1x3x513x513','NPU slower than 4-thread CPU in source; float32 input/output'),
 'Fast-SRGAN':('Fast-SRGAN (fsrgan.tflite)','','','input size not fixed (pref. 128x128); CAUTION: figures identical to SCI 1920x1080 table in the same release, possible copy-paste in source'),
}
meta['movenet']=('MoveNet Lightning (movenet.tflite)','','1x3x192x192','')
meta['SCI']=('SCI','','','')
meta['selfie-segmenter']=('Selfie Segmenter','','','MediaPipe selfie segmenter, int8 re-quantized by NXP')
for f in files:
    d=f.split('/')[-2]
    t=git('show',f'{C}:{f}'); lines=t.split('\n')
    ctx=''; header=None; table_idx=0
    for l in lines:
        if re.search(r'BSP',l) and re.search(r'evaluat|figures|performance',l,re.I): ctx='BSP '+re.search(r'BSP\s+([A-Za-z]*\d[\w.\-]*)',l).group(1).rstrip('.:')
        if '|' in l and re.search(r'latency',l,re.I): header=l; table_idx+=1; continue
        if '|' in l and header and re.search(r'8M ?P',l):
            c=[x.strip() for x in l.strip().strip('|').split('|')]
            prec,lat,plat,acc,cmd=c[0],c[1],c[2],c[3],c[4] if len(c)>4 else ''
            if d not in meta: raise SystemExit('no meta '+d)
            model,arch,shape,extra=meta[d]
            if d=='SCI':
                pass
            if lat in ('-',''):
                continue
            m=re.match(r'([\d.]+)\s*(ms|s)$',lat.replace(' ',''))
            v=float(m.group(1))*(1000 if m.group(2)=='s' else 1)
            v=('%g'%v) if m.group(2)=='s' else m.group(1)
            if acc.startswith('NPU'):
                cu='NPU'; dn='VX delegate (libvx_delegate.so, external delegate) on i.MX 8M Plus NPU'
            else:
                cu='CPU'; dn=f'TFLite CPU, {acc.replace("CPU","").strip(" ()")}'
            note=f'benchmark_model average latency; {dn}; {ctx}; batch not stated (1 assumed)'
            if extra: note+='; '+extra
            add(chip='imx8mp',model=model,architecture=arch,input_shape=shape,precision=prec.lower(),runtime='tflite',measure='latency',batch=1,value=v,unit='ms',compute_unit=cu,source=f'NXP/eiq-model-zoo:{f}',commit=C,note=note)
            # SCI second table handling
            if d=='SCI':
                rows[-1]['model']='SCI low-light enhancement medium (sci.tflite)'
                rows[-1]['input_shape']='1x3x1080x1920' if table_idx==1 else '1x3x720x1280'
                rows[-1]['note']=note.replace('; '+extra,'') if extra else note
            if d=='selfie-segmenter':
                land='landscape' in cmd
                rows[-1]['model']='Selfie Segmenter Landscape (selfie_segmenter_landscape_int8.tflite)' if land else 'Selfie Segmenter General (selfie_segmenter_int8.tflite)'
                rows[-1]['input_shape']='1x3x144x256' if land else '1x3x256x256'

# ---------------- NVIDIA Jetson Orin Nano ----------------
IC='09f68da5ce597634838ef0574963cf0986fdb2c0'; IS='NVIDIA-ISAAC-ROS/isaac_ros_benchmark:README.md'
ib='Isaac ROS benchmark (ros2_benchmark) peak throughput, column "Orin Nano Super 8GB"; Isaac ROS release 3.2 README (later 4.0 README dropped Orin Nano); input from r2b 1920x1200 rosbag resized to network resolution; throughput of ROS node/graph incl. NITROS transport, not bare engine time; batch 1 (not stated)'
isaac=[
 ('TensorRT Node PeopleSemSegNet (peoplesemsegnet_shuffleseg)','','1x3x544x960','fp16','tensorrt',269,'node-level; engine built with trtexec --fp16 (benchmarks/isaac_ros_tensor_rt_benchmark/scripts/isaac_ros_tensor_rt_ps_node.py); results json mean 268.8 fps; README latency 6.2 ms @ 30Hz'),
 ('TensorRT Node DOPE (ketchup)','','1x3x480x640','fp16','tensorrt',20.8,'node-level; VGA network input; trtexec --fp16; README latency 51 ms @ 30Hz'),
 ('Triton Node DOPE (ketchup)','','1x3x480x640','fp16','triton',22.2,'node-level via Triton (TensorRT plan built with trtexec --fp16); README latency 490 ms @ 30Hz'),
 ('DetectNet Object Detection Graph (PeopleNet ResNet34)','','1x3x544x960','int8','tensorrt',33.0,'full graph incl. pre/post-processing; trtexec --int8 with calibration cache; README latency 43 ms @ 30Hz'),
 ('RT-DETR Object Detection Graph (SyntheticaDETR sdetr_grasp)','','1x3x640x640','fp16','tensorrt',37.3,'full graph incl. pre/post-processing; 720p input resized to 640x640; trtexec --fp16; README latency 37 ms @ 30Hz'),
 ('TensorRT Graph PeopleSemSegNet (peoplesemsegnet_shuffleseg)','','1x3x544x960','fp16','tensorrt',224,'full graph (isaac_ros_unet) incl. pre/post-processing; trtexec --fp16; README latency 13 ms @ 30Hz'),
]
for m,a,shp,p,rt,v,n in isaac:
    add(chip='orin-nano',model=m,architecture=a,input_shape=shp,precision=p,runtime=rt,measure='throughput',batch=1,value=v,unit='fps',compute_unit='GPU',source=IS,commit=IC,note=f'{n}; {ib}')
NC='653633614b2eb93b06ba3be9adb2aeffb117bd72'
add(chip='orin-nano',model='MobileSAM full pipeline (image encoder + mask decoder)',input_shape='1x3x1024x1024',precision='fp32',runtime='tensorrt',measure='latency',batch=1,value=146,unit='ms',compute_unit='GPU',source='NVIDIA-AI-IOT/nanosam:README.md',commit=NC,note='column "Jetson Orin Nano (ms) / Full Pipeline"; encoder FP32 + mask decoder FP32 (TensorRT); image-encoder-only figure given as TBD; 1024x1024 from the trtexec shapes in the README; JetPack/power mode not stated')
add(chip='orin-nano',model='NanoSAM (ResNet18) full pipeline (image encoder + mask decoder)',architecture='',input_shape='1x3x1024x1024',precision='fp16',runtime='tensorrt',measure='latency',batch=1,value=27,unit='ms',compute_unit='GPU',source='NVIDIA-AI-IOT/nanosam:README.md',commit=NC,note='column "Jetson Orin Nano (ms) / Full Pipeline"; mixed precision: ResNet18 image encoder FP16 + mask decoder FP32 (TensorRT); image-encoder-only figure given as TBD; JetPack/power mode not stated')

# ---------------- Huawei Ascend 310B ----------------
AC='6a2804a358a5b18e3dac1ab902f41f88e240b00f'
A='ACL_PyTorch/'
ab='ais_bench/ais_infer pure-inference throughput of ATC-compiled OM model ("调用ACL接口推理计算"), column 310B1 (Ascend 310B1 = chip of Atlas 200I DK A2 / 200I A2; board not named in README); GitHub mirror of the Ascend gitee ModelZoo (snapshot 2023-12)'
asc=[ # path, model, arch, shape(C,H,W or custom), precision, note, {bs:fps}
 ('built-in/cv/EfficientNet_for_Pytorch/README.md','EfficientNet-B0','efficientnet_b0','3x224x224','', 'precision not stated (ATC default); AIPP insert_op_conf used', {1:581.81,4:749.9,8:738.22,16:644.23,32:627.57}),
 ('built-in/cv/GoogleNet_for_Pytorch/README.md','GoogleNet','inception_v1','3x224x224','', 'precision not stated (ATC default); AIPP insert_op_conf used', {1:1133.78,4:1249.29,8:1254.85,16:1258.53,32:1236.4,64:877.98}),
 ('built-in/cv/MobileNetV2_for_Pytorch/README.md','MobileNetV2','mobilenet_v2','3x224x224','fp16', 'input/output tensors Float16 per README; only bs4 reported', {4:1488.1}),
 ('built-in/cv/Yolov4_for_Pytorch/README.md','YOLOv4','','3x608x608','', 'precision not stated (ATC default)', {1:42.38,4:41.27,8:42.33,16:29.63,32:26.99,64:27.19}),
 ('contrib/cv/classfication/C3D/README.md','C3D','','10x3x16x112x112','', 'video model; input batchsize x 10 x 3 x 16 x 112 x 112 (clips x C x T x H x W); bs16/32 NA on 310B1', {1:7.02,4:7.43,8:7.15}),
 ('contrib/cv/classfication/MobileNet-v1/README.md','MobileNet-v1','mobilenet_v1','3x224x224','', 'precision not stated (ATC default)', {1:1465.73,4:2207.2,8:2293.9,16:2266.7,32:2378.8,64:2112.5}),
 ('contrib/cv/classfication/Squeezenet1_1/README.md','Squeezenet1_1','squeezenet','3x224x224','', 'SqueezeNet 1.1; precision not stated (ATC default)', {1:3146.63,4:4576.65,8:3871.84,16:3629.88,32:3544.9,64:822.58}),
 ('contrib/cv/classfication/VGG16/README.md','VGG16','vgg16','3x224x224','', 'precision not stated (ATC default)', {1:108.68,4:192.5,8:223.36,16:243.59,32:254.18,64:256.81}),
 ('contrib/cv/classfication/VGG19/README.md','VGG19','vgg19','3x224x224','', 'column labelled 310B (not 310B1); precision not stated (ATC default)', {1:97.47,4:163.6,8:186.89,16:201.26,32:208.05,64:210.34}),
 ('contrib/cv/detection/Cascade-RCNN-Resnet101-FPN-DCN/README.md','Cascade-RCNN-R101-FPN-DCN','','3x1216x1216','', 'bs1 only', {1:0.853}),
 ('contrib/cv/detection/CenterFace/README.md','CenterFace','','3x800x800','', 'precision not stated (ATC default)', {1:95.07,4:89.12,8:80.14,16:78.56,32:78.24}),
 ('contrib/cv/detection/CenterNet/README.md','CenterNet (DCNv2)','','3x512x512','', 'README notes performance for this model measured partly via online inference', {1:6.743,4:6.61,8:6.72,16:6.6,32:6.65}),
 ('contrib/cv/detection/EfficientDetD0/README.md','EfficientDet-D0','','3x512x512','fp16', 'ATC precision_mode=allow_mix_precision (mixed fp16/fp32)', {1:71.21,4:64.3,8:64.42,16:64.75,32:64.64,64:54.31}),
 ('contrib/cv/detection/Faster_R-CNN_DCN_Res50/README.md','Faster R-CNN DCN R50-FPN','','3x1216x1216','', 'bs1 only', {1:2.84}),
 ('contrib/cv/detection/Retinanet/README.md','Retinanet (detectron2)','','3x224x224','', 'input 1 x 3 x 224 x 224 as stated in README (unusually small for RetinaNet); bs1 only', {1:3.84}),
 ('contrib/cv/detection/SSD/README.md','SSD300 (mmdet)','','3x300x300','fp16', 'ATC precision_mode=allow_fp32_to_fp16; VGG16-backbone SSD300 (mmdet config ssd300_coco)', {1:75.42,4:77.9,8:79.77,16:77.84,32:79.78,64:48.36}),
 ('contrib/cv/segmentation/UNet/README.md','UNet','unet','3x572x572','', 'precision not stated (ATC default); bs64 NA on 310B1', {1:12.78,4:11.75,8:11.56,16:11.29,32:11.18}),
 ('contrib/cv/video_understanding/SlowFast/README.md','SlowFast','','1x3x32x224x224','', 'video model; input bs x 1 x 3 x 32 x 224 x 224; bs64 NA on 310B1', {1:19.24,4:19.27,8:19.49,16:15.42,32:13.93}),
 ('contrib/cv/video_understanding/TSM/README.md','TSM','','8x3x224x224','', 'video model; input batchsize x 8 x 3 x 224 x 224 (NCDHW as labelled)', {1:27.05,4:26.82,8:24.86,16:16.38,32:16.34,64:16.48}),
]
for p,m,a,shp,prec,n,d in asc:
    for bs,v in d.items():
        add(chip='ascend310b',model=m,architecture=a,input_shape=f'{bs}x{shp}',precision=prec,runtime='acl',measure='throughput',batch=bs,value=v,unit='fps',compute_unit='NPU',source=f'Ascend/ModelZoo-PyTorch:{A}{p}',commit=AC,note=f'{n}; {ab}')

with open(OUT,'w',newline='') as fh:
    w=csv.DictWriter(fh,fieldnames=HDR,quoting=csv.QUOTE_MINIMAL,lineterminator='\n'); w.writeheader(); w.writerows(rows)
from collections import Counter
print(Counter(r['chip'] for r in rows), len(rows))
