"""The Gradio app (``demo/app.py``): Gatys, feed-forward and AdaIN side by side."""
