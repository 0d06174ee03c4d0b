from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("nudge-templates", views.NudgeTemplateViewSet, basename="nudge-template")
router.register("nudge-rules", views.NudgeRuleViewSet, basename="nudge-rule")
router.register("nudges", views.NudgeViewSet, basename="nudge")
router.register("opt-outs", views.OptOutViewSet, basename="opt-out")
router.register("nudge-replies", views.NudgeReplyViewSet, basename="nudge-reply")

urlpatterns = router.urls
